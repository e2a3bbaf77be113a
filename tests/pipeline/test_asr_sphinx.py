"""The fallback ASR (PocketSphinx): words with timings, offline, chosen by configuration."""

from __future__ import annotations

import re

import numpy as np
import pytest

from earshot.config import Settings
from earshot.pipeline.asr import get_transcriber
from earshot.pipeline.asr_sphinx import PocketsphinxTranscriber
from earshot.pipeline.types import SAMPLE_RATE

pytest.importorskip("pocketsphinx")
pytestmark = pytest.mark.slow


def test_recognises_speech_with_monotonic_word_timings(say, capfd: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    audio = say("Please call me back tomorrow morning.")
    t = PocketsphinxTranscriber().transcribe(audio)
    words = re.sub(r"[^a-z' ]", " ", t.text.lower()).split()
    assert {"call", "tomorrow", "morning"} & set(words), t.text
    last = 0.0
    for w in t.words:
        assert 0.0 <= w.start_s < w.end_s <= len(audio) / SAMPLE_RATE + 0.02
        assert w.start_s >= last and 0.0 <= w.probability <= 1.0
        assert not w.text.startswith(("<", "[")) and "(" not in w.text  # no fillers, no "(2)"
        last = w.start_s
    # nothing it recognised is printed: PocketSphinx's own logging is off
    out, err = capfd.readouterr()
    assert "tomorrow" not in out + err and "morning" not in out + err


def test_silence_short_and_non_finite_input_give_an_empty_transcript() -> None:
    asr = PocketsphinxTranscriber()
    assert asr.transcribe(np.zeros(SAMPLE_RATE, np.float32)).words == []
    assert asr.transcribe(np.zeros(10, np.float32)).text == ""
    noisy = np.full(SAMPLE_RATE, np.nan, np.float32)
    assert asr.transcribe(noisy).words == []
    assert [t.text for t in asr.transcribe_batch([])] == []


def test_chosen_by_configuration_and_loaded_once() -> None:
    settings = Settings(asr_backend="pocketsphinx")
    first = get_transcriber(settings)
    assert isinstance(first, PocketsphinxTranscriber)
    assert get_transcriber(settings) is first


def test_without_settings_the_environment_chooses_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """get_transcriber() with no settings reads EARSHOT_* as the second opinion does (it used to
    fall back to tiny.en on two threads whatever the environment said)."""
    monkeypatch.setenv("EARSHOT_ASR_BACKEND", "pocketsphinx")
    assert isinstance(get_transcriber(), PocketsphinxTranscriber)
