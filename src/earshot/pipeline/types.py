"""Plain data passed between pipeline stages. Audio is always float32 mono at SAMPLE_RATE."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16_000

Audio = np.ndarray  # float32, mono, SAMPLE_RATE, values in [-1, 1]


@dataclass(frozen=True)
class Span:
    """A stretch of audio, in seconds."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Word:
    """One recognised word with its timing (seconds, relative to the audio it came from)."""

    text: str
    start_s: float
    end_s: float
    probability: float = 1.0


@dataclass(frozen=True)
class Transcript:
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass(frozen=True)
class PiiSpan:
    """Personal data found in a transcript: its type (PHONE, EMAIL, NAME, ...) and where it is."""

    type: str
    start_s: float
    end_s: float
    first_word: int = 0
    last_word: int = 0  # inclusive


@dataclass
class DeidSnippet:
    """One snippet exactly as a reviewer will hear and read it."""

    audio: Audio
    start_s: float  # relative to the input recording
    end_s: float
    transcript: str  # masked text
    pii: list[PiiSpan] = field(default_factory=list)  # times relative to the input recording
