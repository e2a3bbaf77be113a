"""DeidPipeline: stage order, times relative to the recording, redaction survives the voice change."""

from __future__ import annotations

import numpy as np
import pytest

import earshot.pipeline.pii as pii_module
from earshot.pipeline.deid import DeidPipeline
from earshot.pipeline.redact import redaction_intervals
from earshot.pipeline.types import SAMPLE_RATE, PiiSpan, Transcript, Word


class StubTranscriber:
    """One word at 0.3-0.8 s of every piece; records what it was given."""

    def __init__(self, probability: float = 1.0) -> None:
        self.pieces: list[np.ndarray] = []
        self.probability = probability

    def transcribe(self, audio: np.ndarray) -> Transcript:
        self.pieces.append(audio.copy())
        return Transcript("secret", [Word("secret", 0.3, 0.8, self.probability)])


class NoisyAnonymiser:
    """Adds noise everywhere, so a redaction done only before it would not survive."""

    def __init__(self) -> None:
        self.inputs: list[np.ndarray] = []

    def anonymise(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        self.inputs.append(audio.copy())
        return (audio + rng.normal(0, 0.05, len(audio))).astype(np.float32)


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


@pytest.fixture
def two_utterances(say) -> np.ndarray:  # noqa: ANN001
    return np.concatenate(
        [
            _silence(2.0),
            say("Please call me tomorrow morning."),
            _silence(1.5),
            say("Can you turn the music down a little bit?", "en-us+f2"),
            _silence(1.0),
        ]
    )


def test_orchestration_with_stubs(monkeypatch, two_utterances) -> None:  # noqa: ANN001
    monkeypatch.setattr(
        pii_module, "detect_pii", lambda t: [PiiSpan("PHONE", 0.3, 0.8, 0, 0)] if t.words else []
    )
    asr, voice = StubTranscriber(), NoisyAnonymiser()
    pipe = DeidPipeline(transcriber=asr, anonymiser=voice, voice_workers=1)  # inputs in order
    snippets = pipe.process(two_utterances, rng=np.random.default_rng(1))

    assert len(snippets) == 2
    assert snippets[0].start_s >= 1.5 and snippets[1].start_s > snippets[0].end_s
    for snip, piece, anon_in in zip(snippets, asr.pieces, voice.inputs, strict=True):
        n = len(snip.audio)
        assert n == len(piece) == len(anon_in)
        assert abs(snip.end_s - snip.start_s - n / SAMPLE_RATE) < 1e-6
        # ASR ran on the original snippet audio (cut from the input at the snippet's times).
        a = int(round(snip.start_s * SAMPLE_RATE))
        assert np.array_equal(piece, two_utterances[a : a + n])
        # PII times are relative to the input recording.
        assert snip.pii == [PiiSpan("PHONE", snip.start_s + 0.3, snip.start_s + 0.8, 0, 0)]
        assert snip.transcript == "[PHONE]"
        # Redacted before the voice change (the anonymiser never hears the PII) ...
        ((lo, hi),) = redaction_intervals([PiiSpan("PHONE", 0.3, 0.8)], n)
        fade = int(0.011 * SAMPLE_RATE)
        assert np.abs(anon_in[lo + fade : hi - fade]).max() == 0.0
        # ... and after it, so nothing the anonymiser adds can bring sound back.
        assert np.abs(snip.audio[lo + fade : hi - fade]).max() == 0.0
        assert np.abs(snip.audio[:lo]).max() > 0.0
    timings = pipe.timings.stages
    assert timings["vad"].calls == 1 and timings["asr"].calls == 1
    assert timings["voice"].calls == 1 and timings["pii"].calls >= 1  # voice: one batch
    assert timings["second_opinion"].calls == 0  # "secret" after no cue: nothing to ask about


def test_voice_workers_change_nothing_but_speed(monkeypatch, two_utterances) -> None:  # noqa: ANN001
    monkeypatch.setattr(pii_module, "detect_pii", lambda t: [])
    outputs = []
    for workers in (1, 2):
        pipe = DeidPipeline(
            transcriber=StubTranscriber(), anonymiser=NoisyAnonymiser(), voice_workers=workers
        )
        outputs.append(pipe.process(two_utterances, rng=np.random.default_rng(7)))
    serial, parallel = outputs
    assert len(serial) == len(parallel) == 2
    for a, b in zip(serial, parallel, strict=True):
        assert np.array_equal(a.audio, b.audio) and (a.start_s, a.end_s) == (b.start_s, b.end_s)


def test_no_speech_gives_no_snippets(monkeypatch) -> None:  # noqa: ANN001
    asr = StubTranscriber()
    pipe = DeidPipeline(transcriber=asr, anonymiser=NoisyAnonymiser())
    assert pipe.process(_silence(5.0)) == []
    assert pipe.process(np.zeros(0, np.float32)) == []
    assert asr.pieces == []


@pytest.mark.slow
def test_real_pipeline_bleeps_masks_and_changes_the_voice(pipeline, say) -> None:  # noqa: ANN001
    speech = say("Thank you for your help. Please call me on five five five, one two three four.")
    audio = np.concatenate([_silence(1.5), speech, _silence(1.0)])
    snippets = pipeline.process(audio)
    assert len(snippets) >= 1
    assert all(s.end_s - s.start_s <= 10.0 for s in snippets)
    assert snippets[0].start_s > 1.0
    text = " ".join(s.transcript for s in snippets)
    assert "[PHONE]" in text or "[NUMBER]" in text
    assert not any(ch.isdigit() for ch in text)
    assert "five" not in text.lower()
    spans = [p for s in snippets for p in s.pii]
    assert spans and all(0 <= p.start_s <= p.end_s <= len(audio) / SAMPLE_RATE for p in spans)
    for snip in snippets:
        for p in snip.pii:
            assert snip.start_s <= p.start_s <= p.end_s <= snip.end_s
            a = int((p.start_s - snip.start_s + 0.02) * SAMPLE_RATE)
            b = int((p.end_s - snip.start_s - 0.02) * SAMPLE_RATE)
            assert np.abs(snip.audio[a:b]).max(initial=0.0) == 0.0  # bleeped (silence)

    # The voice is changed, differently each time (fresh parameters per snippet).
    first = snippets[0]
    a = int(round(first.start_s * SAMPLE_RATE))
    original = audio[a : a + len(first.audio)]
    again = pipeline.process(audio)[0].audio
    assert len(again) == len(first.audio)
    assert not np.allclose(first.audio, original, atol=1e-3)
    assert not np.allclose(first.audio, again, atol=1e-3)


@pytest.mark.slow
def test_transcribe_only_is_vad_plus_asr(pipeline, two_utterances) -> None:  # noqa: ANN001
    result = pipeline.transcribe_only(two_utterances)
    assert len(result) == 2
    (span0, t0), (span1, t1) = result
    assert "tomorrow" in t0.text.lower() and "music" in t1.text.lower()
    assert span0.end_s < span1.start_s


def test_audio_no_word_covers_is_silenced_but_not_reported(monkeypatch, two_utterances) -> None:  # noqa: ANN001
    """What the ASR dropped was never checked for personal data: the reviewer must not hear it."""
    monkeypatch.setattr(pii_module, "detect_pii", lambda t: [])
    pipe = DeidPipeline(transcriber=StubTranscriber(), anonymiser=NoisyAnonymiser())
    snippets = pipe.process(two_utterances, rng=np.random.default_rng(2))
    long_one = max(snippets, key=lambda s: len(s.audio))
    n = len(long_one.audio)
    assert n / SAMPLE_RATE > 2.0  # the stub's one word covers only 0.3-0.8 s
    start = int((0.8 + 0.15 + 0.02) * SAMPLE_RATE)
    assert np.abs(long_one.audio[start : n - int(0.02 * SAMPLE_RATE)]).max() == 0.0
    assert np.abs(long_one.audio[: int(0.8 * SAMPLE_RATE)]).max() > 0.0
    assert long_one.pii == [] and long_one.transcript == "secret"


class GivingUpTranscriber:
    """Hears one word and stretches it over all but the last 0.6 s of every piece, as Whisper
    does when it gives up on what follows ("My pin is..." and the digits)."""

    def transcribe(self, audio: np.ndarray) -> Transcript:
        end = max(0.2, len(audio) / SAMPLE_RATE - 0.6)
        return Transcript("is...", [Word("is...", 0.0, end)])


def test_speech_hidden_under_a_stretched_word_is_silenced(monkeypatch, two_utterances) -> None:  # noqa: ANN001
    """No gap is long enough to show it; the speech inside the word's stretch does."""
    monkeypatch.setattr(pii_module, "detect_pii", lambda t: [])
    pipe = DeidPipeline(transcriber=GivingUpTranscriber(), anonymiser=NoisyAnonymiser())
    snippets = pipe.process(two_utterances, rng=np.random.default_rng(3))
    assert snippets and all(len(s.audio) / SAMPLE_RATE > 1.2 for s in snippets)
    edge = int(0.02 * SAMPLE_RATE)  # the redaction's fades at the snippet's ends
    for s in snippets:
        assert np.abs(s.audio[edge:-edge]).max() == 0.0  # the word itself is not trusted either
        assert s.transcript == "is..." and s.pii == []


class EarlyEndingTranscriber:
    """"My pin 1234", the number's timing ending 0.6 s before the piece does: too short a gap
    for the untranscribed rule, as when Whisper drops a number's last digit ("92744.")."""

    def transcribe(self, audio: np.ndarray) -> Transcript:
        end = len(audio) / SAMPLE_RATE
        words = [Word("My", 0.0, 0.3), Word("pin", 0.3, end - 1.2), Word("1234", end - 1.2, end - 0.6)]
        return Transcript("My pin 1234", words)


def test_personal_data_closing_a_snippet_is_silenced_to_its_end(monkeypatch, two_utterances) -> None:  # noqa: ANN001
    def last_word_is_a_pin(t: Transcript) -> list[PiiSpan]:
        w = t.words[-1]
        return [PiiSpan("PIN", w.start_s, w.end_s, len(t.words) - 1, len(t.words) - 1)]

    monkeypatch.setattr(pii_module, "detect_pii", last_word_is_a_pin)
    pipe = DeidPipeline(transcriber=EarlyEndingTranscriber(), anonymiser=NoisyAnonymiser())
    snippets = pipe.process(two_utterances, rng=np.random.default_rng(4))
    assert snippets
    for s in snippets:
        n = len(s.audio)
        tail = int((0.6 - 0.15 - 0.02) * SAMPLE_RATE)  # after the word's end + margin + fade
        assert np.abs(s.audio[n - tail : n - int(0.02 * SAMPLE_RATE)]).max() == 0.0
        assert np.abs(s.audio[: int(0.3 * SAMPLE_RATE)]).max() > 0.0  # "My" is still heard
        # the reported span is the detector's; only the silenced stretch reaches the end
        assert s.pii[0].end_s < s.end_s - 0.5


class UnsureTranscriber:
    """"Please tell me, not so." for every piece, unsure after the cue "tell"."""

    def transcribe(self, audio: np.ndarray) -> Transcript:
        words = [Word("Please", 0.0, 0.3, 0.95), Word("tell", 0.3, 0.6, 0.9), Word("me,", 0.6, 0.9, 0.3),
                 Word("not", 0.9, 1.2, 0.4), Word("so.", 1.2, 1.5, 0.9)]  # fmt: skip
        return Transcript("Please tell me, not so.", words)


class SecondEar:
    """The larger model: hears "Please tell Mei Doe." in every piece it is given."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def transcribe_batch(self, audios: list[np.ndarray]) -> list[Transcript]:
        self.calls.append(len(audios))
        words = [Word("Please", 0.0, 0.3), Word("tell", 0.3, 0.6), Word("Mei", 0.62, 0.8),
                 Word("Doe.", 0.8, 1.0)]  # fmt: skip
        return [Transcript("Please tell Mei Doe.", words) for _ in audios]


def test_a_second_opinion_masks_and_silences_what_the_first_asr_misheard(two_utterances) -> None:  # noqa: ANN001
    from earshot.pipeline.second_opinion import SecondOpinion

    ear = SecondEar()
    pipe = DeidPipeline(
        transcriber=UnsureTranscriber(), anonymiser=NoisyAnonymiser(),
        second_opinion=SecondOpinion(lambda: ear),  # type: ignore[arg-type, return-value]
    )  # fmt: skip
    snippets = pipe.process(two_utterances, rng=np.random.default_rng(5))
    assert len(snippets) == 2 and ear.calls == [2]  # both snippets, one batch
    fade = int(0.011 * SAMPLE_RATE)
    for s in snippets:
        assert s.transcript == "Please tell [NAME] so."  # the first ASR's words, masked
        assert [(p.type, p.first_word, p.last_word) for p in s.pii] == [("NAME", 2, 3)]
        ((lo, hi),) = redaction_intervals([PiiSpan("NAME", 0.6, 1.2)], len(s.audio))
        assert np.abs(s.audio[lo + fade : hi - fade]).max() == 0.0
        assert np.abs(s.audio[: int(0.4 * SAMPLE_RATE)]).max() > 0.0  # "Please" still heard
    assert pipe.timings.stages["second_opinion"].calls == 1


class GarbleEar:
    """The larger model title-casing what it could not make out: "Please tell, May Petron,
    National Power Solar Island." for "Please tell Mei Petrov that the parcel arrived"."""

    def transcribe_batch(self, audios: list[np.ndarray]) -> list[Transcript]:
        text = "Please tell, May Petron, National Power Solar Island."
        words = [Word(w, 0.2 * i, 0.2 * (i + 1), 0.3 if i > 1 else 0.9) for i, w in enumerate(text.split())]
        return [Transcript(text, words) for _ in audios]


def test_a_name_of_more_than_four_words_from_the_second_opinion_is_not_taken(two_utterances) -> None:  # noqa: ANN001
    from earshot.pipeline.second_opinion import SecondOpinion

    pipe = DeidPipeline(
        transcriber=UnsureTranscriber(), anonymiser=NoisyAnonymiser(),
        second_opinion=SecondOpinion(lambda: GarbleEar()),  # type: ignore[arg-type, return-value]
    )  # fmt: skip
    for s in pipe.process(two_utterances, rng=np.random.default_rng(5)):
        assert s.transcript == "Please tell me, not so." and s.pii == []


def test_no_second_opinion_is_asked_for_confident_speech(two_utterances) -> None:  # noqa: ANN001
    from earshot.pipeline.second_opinion import SecondOpinion

    loads: list[int] = []
    pipe = DeidPipeline(
        transcriber=StubTranscriber(), anonymiser=NoisyAnonymiser(),
        second_opinion=SecondOpinion(lambda: loads.append(1)),  # type: ignore[arg-type, return-value, func-returns-value]
    )  # fmt: skip
    assert len(pipe.process(two_utterances)) == 2
    assert loads == [] and pipe.timings.stages["second_opinion"].calls == 0


def test_settings_turn_the_second_opinion_off() -> None:
    from earshot.config import Settings

    pipe = DeidPipeline(
        transcriber=StubTranscriber(), anonymiser=NoisyAnonymiser(),
        settings=Settings(second_opinion=False),
    )  # fmt: skip
    assert pipe.second_opinion is None


class NameEar:
    """The larger model: hears "This is Mei Doe." at 1.0-2.2 s of every piece it is given."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def transcribe_batch(self, audios: list[np.ndarray]) -> list[Transcript]:
        self.calls.append(len(audios))
        words = [Word("This", 1.0, 1.3), Word("is", 1.3, 1.6), Word("Mei", 1.6, 1.9), Word("Doe.", 1.9, 2.2)]
        return [Transcript("This is Mei Doe.", words) for _ in audios]


def test_a_telephone_band_recording_asks_the_second_opinion_about_every_unsure_snippet(two_utterances) -> None:  # noqa: ANN001, E501
    """tiny.en mishears 8 kHz speech with no cue to show it: every snippet of a band-limited
    recording that it was unsure of is heard again, and what only the second model found is
    masked and silenced."""
    from earshot.evaluation.manifest import telephone_band
    from earshot.pipeline.second_opinion import SecondOpinion

    ear = NameEar()
    pipe = DeidPipeline(
        transcriber=StubTranscriber(probability=0.35), anonymiser=NoisyAnonymiser(),
        second_opinion=SecondOpinion(lambda: ear),  # type: ignore[arg-type, return-value]
    )  # fmt: skip
    snippets = pipe.process(telephone_band(two_utterances), rng=np.random.default_rng(6))
    assert len(snippets) == 2 and ear.calls == [2]
    for s in snippets:
        assert s.transcript == "secret"  # no first-ASR word lies under the name
        ((lo, hi),) = redaction_intervals([PiiSpan("NAME", 1.6, 2.2)], len(s.audio))
        assert np.abs(s.audio[lo + 200 : hi - 200]).max() == 0.0  # silenced all the same
        assert np.abs(s.audio[: int(0.3 * SAMPLE_RATE)]).max() > 0.0

    # the same speech at full band asks nothing: "secret" follows no cue
    ear.calls.clear()
    pipe.process(two_utterances, rng=np.random.default_rng(6))
    assert ear.calls == []


def test_a_telephone_band_snippet_heard_with_confidence_is_not_asked(two_utterances) -> None:  # noqa: ANN001
    """Every word at probability 0.4 or more: no second hearing (most of a call's ordinary
    speech; the cue rule still asks where a cue is followed by unsure words)."""
    from earshot.evaluation.manifest import telephone_band
    from earshot.pipeline.second_opinion import SecondOpinion

    ear = NameEar()
    pipe = DeidPipeline(
        transcriber=StubTranscriber(probability=0.45), anonymiser=NoisyAnonymiser(),
        second_opinion=SecondOpinion(lambda: ear),  # type: ignore[arg-type, return-value]
    )  # fmt: skip
    assert len(pipe.process(telephone_band(two_utterances))) == 2
    assert ear.calls == []


def test_the_telephone_rule_can_be_turned_off(two_utterances) -> None:  # noqa: ANN001
    from earshot.evaluation.manifest import telephone_band
    from earshot.pipeline.second_opinion import SecondOpinion, SecondOpinionOptions

    ear = NameEar()
    opinion = SecondOpinion(lambda: ear, SecondOpinionOptions(every_narrowband_snippet=False))  # type: ignore[arg-type, return-value]
    pipe = DeidPipeline(
        transcriber=StubTranscriber(probability=0.35), anonymiser=NoisyAnonymiser(), second_opinion=opinion
    )
    assert len(pipe.process(telephone_band(two_utterances))) == 2
    assert ear.calls == []


class LateTimer:
    """Times "is" and the number 0.2 s late, as Whisper does after a pause (scripts/word_timing.py):
    "My number is" | pause | "four two four two". "number" ends where the pause starts, so the
    words leave no gap for the span to widen over."""

    def __init__(self) -> None:
        self.digits_at: list[tuple[float, float]] = []

    def transcribe(self, audio: np.ndarray) -> Transcript:
        from earshot.pipeline.redact import pauses

        loud = np.flatnonzero(np.abs(audio) > 0.01) / SAMPLE_RATE
        said_start, said_end = float(loud[0]), float(loud[-1])
        (gap_start, gap_end), *_ = [p for p in pauses(audio) if p[0] > said_start]
        self.digits_at.append((gap_end, said_end))
        third = (gap_start - said_start) / 3
        words = [Word("My", said_start, said_start + third),
                 Word("number", said_start + third, gap_start),
                 Word("is", gap_end, gap_end + 0.2),
                 Word("4242", gap_end + 0.2, said_end)]  # fmt: skip
        return Transcript("My number is 4242", words)


def test_a_number_timed_late_is_silenced_from_the_pause_before_it(say) -> None:  # noqa: ANN001
    def trimmed(text: str) -> np.ndarray:
        x = say(text)
        loud = np.flatnonzero(np.abs(x) > 0.01)
        return x[loud[0] : loud[-1] + 1]

    audio = np.concatenate([_silence(0.5), trimmed("My number is"), _silence(0.25),
                            trimmed("four two four two"), _silence(0.5)])  # fmt: skip
    asr, voice = LateTimer(), NoisyAnonymiser()
    pipe = DeidPipeline(transcriber=asr, anonymiser=voice)
    (snip,) = pipe.process(audio, rng=np.random.default_rng(3))
    assert snip.transcript == "My number is [NUMBER]"
    ((digits_start, digits_end),) = asr.digits_at
    a, b = int(digits_start * SAMPLE_RATE), int(digits_end * SAMPLE_RATE)
    # every sample of the number, its first 0.2 s included, is silent before the voice change
    # (the anonymiser never hears it) and after it
    assert np.abs(voice.inputs[0][a:b]).max() == 0.0
    assert np.abs(snip.audio[a:b]).max() == 0.0
    # with the fixed margin alone, 50 ms of the first digit would have been heard
    ((lo, _),) = redaction_intervals([PiiSpan("NUMBER", digits_start + 0.2, digits_end)], len(snip.audio))
    assert lo > a + int(0.04 * SAMPLE_RATE)
    # "My number is" is heard
    carrier_end = int((digits_start - 0.25) * SAMPLE_RATE)
    assert np.abs(snip.audio[: carrier_end - int(0.05 * SAMPLE_RATE)]).max() > 0.0
