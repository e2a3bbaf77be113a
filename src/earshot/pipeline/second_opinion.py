"""A second, larger ASR model where the fast one may have misheard personal data.

Every PII miss left in the measurements (docs/deid-pipeline.md) is tiny.en hearing ordinary
words where a name or address was said ("Please tell me, not if I are so derived." for "Please
tell Mei that the parcel arrived"). Where a PII cue ("tell", "my name is", "account number",
"email") is followed by words the fast ASR was unsure of and nothing was found there, the
snippet is transcribed again by Whisper base, and what the PII detector finds in that second
transcript is silenced too. Only such snippets pay for the larger model (about twice tiny.en's
cost); it is loaded on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from earshot.pipeline.pii import cue_ends
from earshot.pipeline.pii_spoken import clean
from earshot.pipeline.types import Audio, PiiSpan, Transcript

if TYPE_CHECKING:
    from earshot.config import Settings
    from earshot.pipeline.asr import WhisperTranscriber


@dataclass(frozen=True)
class SecondOpinionOptions:
    """When a snippet is heard again; defaults from the PII evaluation (see deid-pipeline.md)."""

    unsure_prob: float = 0.7  # a word after a cue less sure than this asks for a second opinion
    window: int = 6  # words after the cue that may hold the value


def needs_second_opinion(
    transcript: Transcript, spans: list[PiiSpan], options: SecondOpinionOptions | None = None
) -> bool:
    """True if a PII cue is followed, within the window and the sentence, by an unsure word
    and no personal data was found there, or ends the snippet (the value may be dropped)."""
    opts = options or SecondOpinionOptions()
    words = transcript.words
    if not words:
        return False
    lows = [clean(w.text).lower() for w in words]
    covered = {i for s in spans for i in range(s.first_word, s.last_word + 1)}
    for k in cue_ends(lows):
        if k + 1 >= len(words):
            return True  # "my pin is" and nothing after it: the ASR may have dropped the value
        if words[k].text.strip().endswith((".", "?", "!")):
            continue
        window: list[int] = []
        for j in range(k + 1, min(len(words), k + 1 + opts.window)):
            window.append(j)
            if words[j].text.strip().endswith((".", "?", "!")):
                break
        if any(j in covered for j in window):
            continue
        if any(float(words[j].probability) < opts.unsure_prob for j in window):
            return True
    return False


def map_onto(
    primary: Transcript, other: list[PiiSpan], slack_s: float = 0.05
) -> tuple[list[PiiSpan], list[PiiSpan]]:
    """`other` (spans found in a second transcript of the same audio) as spans of `primary`'s
    words, for the reviewer's masked text, and those no primary word overlaps (audio only).

    A mapped span keeps the union of both timings, so the audio silenced is never less than
    either transcript asked for.
    """
    mapped: list[PiiSpan] = []
    audio_only: list[PiiSpan] = []
    for s in other:
        hit = [
            i
            for i, w in enumerate(primary.words)
            if w.end_s > s.start_s + slack_s and w.start_s < s.end_s - slack_s
        ]
        if not hit:
            audio_only.append(PiiSpan(s.type, s.start_s, s.end_s, -1, -1))
            continue
        a, b = hit[0], hit[-1]
        start = min(s.start_s, primary.words[a].start_s)
        end = max(s.end_s, primary.words[b].end_s)
        mapped.append(PiiSpan(s.type, start, end, a, b))
    return mapped, audio_only


def merge_spans(first: list[PiiSpan], second: list[PiiSpan]) -> list[PiiSpan]:
    """Both lists as one, in word order; spans sharing a word become one (the type of the one
    that starts first, the union of their words and times)."""
    out: list[PiiSpan] = []
    for s in sorted([*first, *second], key=lambda s: (s.first_word, s.last_word)):
        if out and s.first_word <= out[-1].last_word:
            p = out[-1]
            out[-1] = PiiSpan(
                p.type, min(p.start_s, s.start_s), max(p.end_s, s.end_s),
                p.first_word, max(p.last_word, s.last_word),
            )  # fmt: skip
            continue
        out.append(s)
    return out


class SecondOpinion:
    """The larger model, loaded on first use by `load` (once per process, thread-safe)."""

    def __init__(
        self,
        load: Callable[[], WhisperTranscriber],
        options: SecondOpinionOptions | None = None,
    ) -> None:
        self.options = options or SecondOpinionOptions()
        self._load = load
        self._model: WhisperTranscriber | None = None
        self._lock = threading.Lock()

    @property
    def transcriber(self) -> WhisperTranscriber:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def wanted(self, transcript: Transcript, spans: list[PiiSpan]) -> bool:
        """Whether this snippet should be heard again (`needs_second_opinion`)."""
        return needs_second_opinion(transcript, spans, self.options)

    def transcribe_batch(self, audios: Sequence[Audio]) -> list[Transcript]:
        return self.transcriber.transcribe_batch(audios)


def default_second_opinion(settings: Settings | None = None) -> SecondOpinion | None:
    """Whisper base from its pinned wheels (joined and hash-checked once, loaded on first use),
    on the same threads as the first ASR; None when `settings.second_opinion` is off
    (`EARSHOT_SECOND_OPINION=false` when no settings are given)."""
    if settings is None:
        from earshot.config import Settings

        settings = Settings()
    if not settings.second_opinion:
        return None
    threads = settings.asr_threads

    def load() -> WhisperTranscriber:
        from earshot.pipeline.asr import WhisperTranscriber
        from earshot.pipeline.asr_base import BASE_MODEL_SHA256, whisper_base_model_dir

        return WhisperTranscriber(
            whisper_base_model_dir(), expected_sha256=BASE_MODEL_SHA256, cpu_threads=threads
        )

    return SecondOpinion(load)
