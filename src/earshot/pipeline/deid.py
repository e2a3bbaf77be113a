"""The de-identification path for one recording: VAD snippets -> ASR -> PII -> bleep -> new voice.

`DeidPipeline` loads its models once (VAD, ASR, PII recognisers, voice anonymiser) and turns a
decoded recording into `DeidSnippet`s exactly as a reviewer will hear and read them:

1. `segment`: speech cut at pauses into snippets of at most `max_snippet_s`;
2. ASR on each *original* snippet (better accuracy; one batched call per recording);
3. `detect_pii` on the transcript, `mask_transcript` for the text the reviewer reads;
4. `redaction_intervals` + `replace_intervals`: PII spans silenced in the snippet audio, each
   edge at a nearby pause or a margin out;
5. `VoiceAnonymiser.anonymise` with fresh random parameters per snippet, drawn from OS entropy
   and never stored; the redaction is applied once more afterwards so nothing the anonymiser
   does can bring sound back into a bleeped stretch. A recording's snippets are anonymised on
   `voice_workers` threads (numpy's FFTs release the GIL), each with its own generator.

Snippet and PII times in the result are relative to the input recording. Per-stage wall and CPU
times accumulate in `DeidPipeline.timings` (used by bench/deid.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from earshot.pipeline.decode import decode_audio
from earshot.pipeline.segment import SegmentOptions, SileroVad, get_vad, segment
from earshot.pipeline.types import SAMPLE_RATE, Audio, DeidSnippet, PiiSpan, Span, Transcript

if TYPE_CHECKING:
    from earshot.config import Settings
    from earshot.pipeline.asr import Transcriber
    from earshot.pipeline.second_opinion import SecondOpinion
    from earshot.pipeline.voice import VoiceAnonymiser

STAGES = ("decode", "vad", "asr", "second_opinion", "pii", "redact", "voice")


@dataclass
class StageTime:
    """Accumulated wall-clock and process CPU seconds of one stage."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    calls: int = 0


@dataclass
class Timings:
    stages: dict[str, StageTime] = field(default_factory=lambda: {s: StageTime() for s in STAGES})

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            t = self.stages.setdefault(stage, StageTime())
            t.wall_s += time.perf_counter() - wall
            t.cpu_s += time.process_time() - cpu
            t.calls += 1

    def reset(self) -> None:
        self.stages = {s: StageTime() for s in STAGES}


class DeidPipeline:
    """Models loaded once; `process` de-identifies one decoded recording."""

    def __init__(
        self,
        *,
        max_snippet_s: float = 10.0,
        transcriber: Transcriber | None = None,
        anonymiser: VoiceAnonymiser | None = None,
        vad: SileroVad | None = None,
        segment_options: SegmentOptions | None = None,
        redact_margin_s: float = 0.15,
        settings: Settings | None = None,
        voice_workers: int = 2,
        second_opinion: SecondOpinion | None | bool = True,
        preload: bool = False,
    ) -> None:
        from earshot.pipeline.asr import get_transcriber
        from earshot.pipeline.second_opinion import default_second_opinion
        from earshot.pipeline.voice import VoiceAnonymiser

        self.max_snippet_s = max_snippet_s
        self.segment_options = segment_options or SegmentOptions()
        self.redact_margin_s = redact_margin_s
        self.vad = vad or get_vad()
        self.transcriber = transcriber or get_transcriber(settings)
        self.anonymiser = anonymiser or VoiceAnonymiser()
        # True: Whisper base from the pinned wheels (loaded on first use); False/None: off.
        if second_opinion is True:
            second_opinion = default_second_opinion(settings)
        self.second_opinion = second_opinion or None
        self._voice_pool = ThreadPoolExecutor(voice_workers, "earshot-voice") if voice_workers > 1 else None
        self.timings = Timings()
        self._warm_up(preload)

    def _warm_up(self, preload: bool) -> None:
        """Load what the PII detector loads lazily (recognisers, gazetteer) now, not mid-request.

        With `preload` (a long-lived process) also what only some recordings need: the Presidio
        engine (about 3 s to import spaCy and build, needed for mixed letter-digit tokens) and
        the second-opinion model, so that no upload waits for a load.
        """
        from earshot.pipeline.pii import detect_pii
        from earshot.pipeline.types import Word

        words = [Word("call", 0.0, 0.3), Word("Anna", 0.3, 0.6), Word("on", 0.6, 0.7)]
        detect_pii(Transcript(text="call Anna on", words=words))
        if preload:
            from earshot.pipeline.pii_presidio import analyzer

            analyzer()
            if self.second_opinion is not None:
                self.second_opinion.transcriber  # noqa: B018 - loads the model

    @classmethod
    def from_settings(cls, settings: Settings, *, preload: bool = False) -> DeidPipeline:
        """The pipeline a deployment's settings describe (snippet length, ASR model, hash and
        threads; the voice change runs on as many threads as the ASR). `preload`: load every
        model now (for long-lived processes) instead of on first use."""
        return cls(
            max_snippet_s=settings.max_snippet_s,
            settings=settings,
            voice_workers=settings.asr_threads,
            preload=preload,
        )

    # -- stages --------------------------------------------------------------------------

    def decode(self, data: bytes, *, max_duration_s: float | None = None) -> Audio:
        """`decode_audio`, timed as the decode stage."""
        with self.timings.measure("decode"):
            return decode_audio(data, max_duration_s=max_duration_s)

    def segment(self, audio: Audio) -> list[Span]:
        with self.timings.measure("vad"):
            return segment(
                audio, max_snippet_s=self.max_snippet_s, options=self.segment_options, vad=self.vad
            )

    def transcribe_spans(self, audio: Audio, spans: list[Span]) -> list[Transcript]:
        """ASR of each span of `audio` (original audio), word times relative to the span."""
        pieces = [_cut(audio, span) for span in spans]
        with self.timings.measure("asr"):
            batch = getattr(self.transcriber, "transcribe_batch", None)
            if callable(batch):
                return list(batch(pieces))
            return [self.transcriber.transcribe(p) for p in pieces]

    def transcribe_only(self, audio: Audio) -> list[tuple[Span, Transcript]]:
        """VAD + ASR, nothing de-identified (for benchmarks and ASR evaluation)."""
        spans = self.segment(audio)
        return list(zip(spans, self.transcribe_spans(audio, spans), strict=True))

    # -- the whole path ------------------------------------------------------------------

    def process(self, audio: Audio, *, rng: np.random.Generator | None = None) -> list[DeidSnippet]:
        """De-identified snippets of `audio` (16 kHz mono float32), in order; [] if no speech.

        `rng` is for tests only; by default every snippet's voice parameters come from fresh
        OS entropy and are never kept.
        """
        from earshot.pipeline.pii import continue_numbers, cut_off_value, detect_pii, mask_transcript
        from earshot.pipeline.redact import (
            redaction_intervals,
            replace_intervals,
            to_snippet_edges,
            untranscribed_spans,
        )

        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        spans = self.segment(audio)
        transcripts = self.transcribe_spans(audio, spans)
        pieces = [_cut(audio, span) for span in spans]
        found: list[tuple[list[PiiSpan], str, list[tuple[int, int]], Audio]] = []
        durations = [len(piece) / SAMPLE_RATE for piece in pieces]
        with self.timings.measure("pii"):
            pii_of = [_clamp_spans(detect_pii(t), d) for t, d in zip(transcripts, durations, strict=True)]
        heard_only = self._ask_second_opinion(audio, pieces, durations, transcripts, pii_of)
        with self.timings.measure("pii"):
            pii_of = [
                _clamp_spans(continue_numbers(t, p), d)
                for t, p, d in zip(transcripts, pii_of, durations, strict=True)
            ]
        for piece, transcript, pii, extra, duration in zip(
            pieces, transcripts, pii_of, heard_only, durations, strict=True
        ):
            with self.timings.measure("pii"):
                masked = mask_transcript(transcript, pii)
            with self.timings.measure("redact"):
                # Audio no recognised word accounts for was never checked for personal data (often
                # the digits the ASR gave up on): silence it too, in the audio only; so is what
                # lies beyond personal data that opens or closes the snippet, and what only the
                # second opinion heard where the first transcript has no word.
                silenced = [
                    *to_snippet_edges(pii, len(transcript.words), duration),
                    *untranscribed_spans(transcript.words, duration, audio=piece),
                    *cut_off_value(transcript, duration),
                    *extra,
                ]
                # Edges at the original snippet's pauses, once: the same cuts after the voice change.
                cuts = redaction_intervals(silenced, len(piece), margin_s=self.redact_margin_s, guide=piece)
                redacted = replace_intervals(piece, cuts)
            found.append((pii, masked, cuts, redacted))
        voiced = self._anonymise_all([f[3] for f in found], rng)
        out: list[DeidSnippet] = []
        for span, piece, (pii, masked, cuts, _), new_voice in zip(
            spans, pieces, found, voiced, strict=True
        ):
            with self.timings.measure("redact"):
                final = replace_intervals(_fit(new_voice, len(piece)), cuts)
            out.append(
                DeidSnippet(
                    audio=np.asarray(final, dtype=np.float32),
                    start_s=span.start_s,
                    end_s=span.start_s + len(piece) / SAMPLE_RATE,
                    transcript=masked,
                    pii=[
                        PiiSpan(p.type, span.start_s + p.start_s, span.start_s + p.end_s,
                                p.first_word, p.last_word)
                        for p in pii
                    ],
                )
            )  # fmt: skip
        return out

    def _ask_second_opinion(
        self,
        audio: Audio,
        pieces: list[Audio],
        durations: list[float],
        transcripts: list[Transcript],
        pii_of: list[list[PiiSpan]],
    ) -> list[list[PiiSpan]]:
        """Where a PII cue is followed by unsure words and nothing was found, transcribe the
        snippet again with the larger model and add what it finds (`pii_of` is updated in
        place). In a band-limited recording (a telephone call) every snippet with words is
        asked, and where no cue asked, only spans sharing no word with the first transcript's
        are added. Returns, per snippet, the spans only the second opinion has words for."""
        from earshot.pipeline.pii import detect_pii
        from earshot.pipeline.second_opinion import (
            clip_to_agreed_number,
            map_onto,
            merge_spans,
            only_new,
            trim_agreed,
            without_doubted_names,
            without_long_names,
        )
        from earshot.pipeline.voice import band_edge_hz

        extra: list[list[PiiSpan]] = [[] for _ in pieces]
        if self.second_opinion is None:
            return extra
        with self.timings.measure("pii"):
            cued = {
                i for i, (t, p) in enumerate(zip(transcripts, pii_of, strict=True))
                if self.second_opinion.wanted(t, p)
            }  # fmt: skip
            # tiny.en mishears narrowband speech past what the cue rule can see (deid-pipeline.md)
            narrow = (
                self.second_opinion.options.every_narrowband_snippet
                and len(cued) < sum(1 for t in transcripts if t.words)
                and band_edge_hz(audio) is not None
            )
            sure = self.second_opinion.options.narrowband_sure_prob
            asked = [
                i for i, t in enumerate(transcripts)
                if i in cued or (narrow and t.words and min(w.probability for w in t.words) < sure)
            ]  # fmt: skip
        if not asked:
            return extra
        with self.timings.measure("second_opinion"):
            again = self.second_opinion.transcribe_batch([pieces[i] for i in asked])
        with self.timings.measure("pii"):
            for i, other in zip(asked, again, strict=True):
                found = without_long_names(_clamp_spans(detect_pii(other), durations[i]))
                found = without_doubted_names(found, transcripts[i], other)
                mapped, extra[i] = map_onto(transcripts[i], other, found)
                if i not in cued:
                    mapped = only_new(mapped, pii_of[i])
                merged = trim_agreed(merge_spans(pii_of[i], mapped), transcripts[i], other, found)
                pii_of[i] = clip_to_agreed_number(merged, transcripts[i], other, found)
        return extra

    def _anonymise_all(self, pieces: list[Audio], rng: np.random.Generator | None) -> list[Audio]:
        """The voice change of every snippet, in order, on the voice workers.

        Each snippet gets its own generator (one is never shared between threads): spawned from
        the caller's in tests, so the result does not depend on the number of workers; from
        fresh OS entropy otherwise.
        """
        gens = rng.spawn(len(pieces)) if rng is not None else [np.random.default_rng() for _ in pieces]
        with self.timings.measure("voice"):
            if self._voice_pool is None or len(pieces) < 2:
                return [self.anonymiser.anonymise(p, g) for p, g in zip(pieces, gens, strict=True)]
            return list(self._voice_pool.map(self.anonymiser.anonymise, pieces, gens))

    def process_bytes(self, data: bytes, *, max_duration_s: float | None = None) -> list[DeidSnippet]:
        """Decode (raising `AudioError` on bad input) and de-identify an uploaded recording."""
        return self.process(self.decode(data, max_duration_s=max_duration_s))


def _cut(audio: Audio, span: Span) -> Audio:
    a = max(0, int(round(span.start_s * SAMPLE_RATE)))
    b = min(len(audio), int(round(span.end_s * SAMPLE_RATE)))
    return audio[a:b]


def _fit(audio: Audio, n: int) -> Audio:
    """Exactly `n` samples (the anonymiser keeps length; this only guards against drift)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if len(audio) == n:
        return audio
    if len(audio) > n:
        return audio[:n]
    return np.concatenate([audio, np.zeros(n - len(audio), dtype=np.float32)])


def _clamp_spans(spans: list[PiiSpan], duration: float) -> list[PiiSpan]:
    """PII spans inside [0, duration] with start <= end (ASR timings can overshoot a little)."""
    out = []
    for p in spans:
        start = min(max(float(p.start_s), 0.0), duration)
        end = min(max(float(p.end_s), start), duration)
        out.append(PiiSpan(p.type, start, end, p.first_word, p.last_word))
    return out
