"""segment(): speech cut at pauses into snippets of at most max_snippet_s; silence gives []."""

from __future__ import annotations

import numpy as np
import pytest

from earshot.pipeline.segment import segment
from earshot.pipeline.types import SAMPLE_RATE


def _frame_rms(x: np.ndarray, at_s: float, half_s: float = 0.02) -> float:
    a = max(0, int((at_s - half_s) * SAMPLE_RATE))
    b = int((at_s + half_s) * SAMPLE_RATE)
    return float(np.sqrt(np.mean(x[a:b] ** 2))) if b > a else 0.0


@pytest.mark.parametrize("max_s", [10.0, 6.0])
def test_long_speech_never_gives_a_snippet_over_the_limit(long_speech: np.ndarray, max_s: float) -> None:
    assert len(long_speech) / SAMPLE_RATE > 38
    spans = segment(long_speech, max_snippet_s=max_s)
    assert len(spans) >= 4
    for s in spans:
        assert 0 <= s.start_s < s.end_s <= len(long_speech) / SAMPLE_RATE
        assert s.duration_s <= max_s + 1e-9
    for a, b in zip(spans, spans[1:], strict=False):
        assert a.end_s <= b.start_s  # ordered, not overlapping


def test_snippets_cover_the_speech_and_cuts_fall_in_pauses(long_speech: np.ndarray) -> None:
    spans = segment(long_speech, max_snippet_s=10.0)
    # Nearly all loud samples are inside some snippet.
    loud = np.abs(long_speech) > 0.05
    covered = np.zeros(len(long_speech), bool)
    for s in spans:
        covered[int(s.start_s * SAMPLE_RATE) : int(s.end_s * SAMPLE_RATE)] = True
    assert covered[loud].mean() > 0.98
    # Where one snippet ends and the next starts, the audio is quiet (a pause, not a word).
    speech_rms = float(np.sqrt(np.mean(long_speech[loud] ** 2)))
    for a, b in zip(spans, spans[1:], strict=False):
        cut = (a.end_s + b.start_s) / 2 if b.start_s - a.end_s < 0.5 else a.end_s
        assert _frame_rms(long_speech, cut) < 0.1 * speech_rms


def test_silence_and_noise_give_no_snippets() -> None:
    rng = np.random.default_rng(0)
    assert segment(np.zeros(SAMPLE_RATE * 5, np.float32)) == []
    assert segment(rng.normal(0, 0.003, SAMPLE_RATE * 5).astype(np.float32)) == []
    assert segment(np.zeros(100, np.float32)) == []


def test_accidental_blip_is_dropped(sentence: np.ndarray) -> None:
    onset = int(np.argmax(np.abs(sentence) > 0.05))
    blip = sentence[onset : onset + int(0.15 * SAMPLE_RATE)]
    audio = np.concatenate(
        [np.zeros(2 * SAMPLE_RATE, np.float32), blip, np.zeros(2 * SAMPLE_RATE, np.float32)]
    )
    assert segment(audio) == []


def test_a_sentence_in_silence_is_one_padded_snippet(sentence: np.ndarray) -> None:
    lead = 2.0
    audio = np.concatenate(
        [np.zeros(int(lead * SAMPLE_RATE), np.float32), sentence, np.zeros(SAMPLE_RATE, np.float32)]
    )
    spans = segment(audio)
    assert len(spans) == 1
    onset = lead + np.argmax(np.abs(sentence) > 0.02) / SAMPLE_RATE
    assert onset - 0.4 < spans[0].start_s <= onset
    assert spans[0].end_s < len(audio) / SAMPLE_RATE - 0.5
