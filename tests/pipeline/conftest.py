"""Shared fixtures for the pipeline tests (speech is synthesised into pytest's tmp dirs only)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from earshot.pipeline.types import SAMPLE_RATE
from tests.pipeline.audio_helpers import LONG_SENTENCES, SENTENCE, synth


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def say(speech_dir: Path) -> Callable[..., np.ndarray]:
    """`say(text, voice="en-us")` -> float32 16 kHz speech (cached per text and voice)."""
    cache: dict[tuple[str, str], np.ndarray] = {}

    def _say(text: str, voice: str = "en-us") -> np.ndarray:
        key = (text, voice)
        if key not in cache:
            cache[key] = synth(text, speech_dir / f"s{len(cache)}.wav", voice)
        return cache[key].copy()

    return _say


@pytest.fixture(scope="session")
def sentence(say: Callable[..., np.ndarray]) -> np.ndarray:
    return say(SENTENCE)


@pytest.fixture(scope="session")
def long_speech(say: Callable[..., np.ndarray]) -> np.ndarray:
    """About 40 s of speech: sentences with pauses of 0.15-0.9 s, one run-on stretch > 10 s."""
    rng = np.random.default_rng(7)
    voices = ["en-us", "en-us+f2", "en-gb-x-rp+m3"]
    parts = [np.zeros(SAMPLE_RATE // 2, np.float32)]
    for round_ in range(2):
        for i, text in enumerate(LONG_SENTENCES):
            parts.append(say(text, voices[(i + round_) % len(voices)]))
            pause = 0.15 if (round_ == 0 and i < 3) else float(rng.uniform(0.3, 0.9))
            parts.append(np.zeros(int(pause * SAMPLE_RATE), np.float32))
    return np.concatenate(parts)


@pytest.fixture(scope="session")
def transcriber():  # noqa: ANN201 - the session's one WhisperTranscriber
    from earshot.pipeline.asr import get_transcriber

    return get_transcriber()


@pytest.fixture(scope="session")
def pipeline(transcriber):  # noqa: ANN001, ANN201 - one DeidPipeline (models loaded once)
    from earshot.pipeline.deid import DeidPipeline

    return DeidPipeline(transcriber=transcriber)
