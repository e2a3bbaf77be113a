"""Audio redaction: span+margin replaced, everything else untouched, no clicks, length kept."""

from __future__ import annotations

import numpy as np
import pytest

from earshot.pipeline.redact import (
    TONE_HZ,
    edge_after,
    edge_before,
    pauses,
    redact_audio,
    redaction_intervals,
    replace_intervals,
    spoken_chars,
    to_snippet_edges,
    untranscribed_spans,
)
from earshot.pipeline.types import SAMPLE_RATE, PiiSpan, Word

SR = SAMPLE_RATE


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal(int(seconds * SR))).clip(-1, 1).astype(np.float32)


def band_energy(x: np.ndarray, hz: float) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    band = (freqs > hz - 20) & (freqs < hz + 20)
    return float(spec[band].sum() / spec.sum())


def test_span_plus_margin_replaced_by_tone_outside_unchanged() -> None:
    x = noise(4.0)
    span = PiiSpan("PHONE", 1.0, 2.0, 3, 7)
    y = redact_audio(x, [span], margin_s=0.15, tone_hz=TONE_HZ)
    assert y.shape == x.shape and y.dtype == np.float32
    a, b = int(0.85 * SR), int(2.15 * SR)
    assert np.array_equal(y[:a], x[:a])
    assert np.array_equal(y[b:], x[b:])
    inner = y[a + 200 : b - 200]
    # the inside is the tone alone: none of the original signal is left
    t = np.arange(a + 200, b - 200) - a
    tone = 0.1 * np.sin(2 * np.pi * 1000 * t / SR)
    assert np.allclose(inner, tone, atol=1e-5)
    assert band_energy(inner, 1000.0) > 0.9
    assert x is not y and not np.shares_memory(x, y)


def test_silence_by_default_and_input_untouched() -> None:
    x = noise(2.0)
    before = x.copy()
    y = redact_audio(x, [PiiSpan("NAME", 0.5, 0.8)], margin_s=0.1)
    assert np.array_equal(x, before)
    a, b = int(0.4 * SR), int(0.9 * SR)
    assert np.all(y[a + 200 : b - 200] == 0)


def test_no_clicks_at_boundaries() -> None:
    # a smooth low tone as "speech": any hard cut would show as a large sample jump
    t = np.arange(3 * SR) / SR
    x = (0.5 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
    y = redact_audio(x, [PiiSpan("CARD", 1.0, 1.5)], tone_hz=TONE_HZ)
    max_step_orig = np.abs(np.diff(x)).max()
    max_step_tone = 2 * np.pi * 1000 / SR * 0.1
    assert np.abs(np.diff(y)).max() <= max_step_orig + max_step_tone + 1e-4


def test_margin_clamped_to_audio_and_overlaps_merged() -> None:
    x = noise(1.0)
    spans = [PiiSpan("PHONE", 0.0, 0.3), PiiSpan("PHONE", 0.25, 0.5), PiiSpan("NAME", 0.9, 1.2)]
    iv = redaction_intervals(spans, len(x), margin_s=0.15)
    assert iv == [(0, int(0.65 * SR)), (int(0.75 * SR), SR)]
    y = redact_audio(x, spans)
    assert len(y) == len(x)
    assert np.array_equal(y[int(0.65 * SR) : int(0.75 * SR)], x[int(0.65 * SR) : int(0.75 * SR)])


def test_no_spans_or_empty_audio() -> None:
    x = noise(0.5)
    assert np.array_equal(redact_audio(x, []), x)
    assert redact_audio(np.zeros(0, np.float32), [PiiSpan("NAME", 0, 1)]).shape == (0,)
    # a span wholly after the end does nothing; a reversed or non-finite one is handled
    assert np.array_equal(redact_audio(x, [PiiSpan("NAME", 5.0, 6.0)]), x)
    assert len(redact_audio(x, [PiiSpan("NAME", 0.3, 0.1), PiiSpan("X", float("nan"), 1)])) == len(x)


def test_rejects_non_mono() -> None:
    with pytest.raises(ValueError):
        redact_audio(np.zeros((2, 100), np.float32), [])


def test_untranscribed_stretches() -> None:
    words = [Word("please", 0.1, 0.4), Word("charge", 0.4, 0.7), Word("the", 0.7, 0.8),
             Word("card.", 0.8, 1.2), Word("thanks", 5.0, 5.4)]
    spans = untranscribed_spans(words, 6.5)
    assert [(s.type, s.start_s, s.end_s) for s in spans] == [
        ("UNTRANSCRIBED", 1.2, 5.0), ("UNTRANSCRIBED", 5.4, 6.5)]
    assert untranscribed_spans([], 3.0)[0].end_s == 3.0
    assert untranscribed_spans([Word("hi", 0.0, 0.5)], 1.0) == []


def _speech(seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_a_word_stretched_over_speech_the_asr_gave_up_on_is_untranscribed() -> None:
    # "my pin is" then 1.6 s of digits the ASR dropped, its last word stretched over them
    audio = np.concatenate([_speech(0.9), np.zeros(1600, np.float32), _speech(1.6)])
    words = [Word("My", 0.0, 0.3), Word("pin", 0.3, 0.6), Word("is...", 0.6, 2.6)]
    assert untranscribed_spans(words, 2.6) == []  # no gap: the timing alone hides it
    spans = untranscribed_spans(words, 2.6, audio=audio)
    assert [(s.type, s.start_s, s.end_s) for s in spans] == [("UNTRANSCRIBED", 0.6, 2.6)]


def test_a_word_stretched_over_silence_or_said_slowly_is_left_alone() -> None:
    # a pause inside "by ... the door" that the ASR gives to "the"; a drawn-out "nine"
    audio = np.concatenate([_speech(0.3), np.zeros(16000, np.float32), _speech(0.2), _speech(0.75)])
    words = [Word("by", 0.0, 0.3), Word("the", 0.3, 1.5), Word("9", 1.5, 2.25)]
    assert untranscribed_spans(words, 2.25, audio=audio) == []
    assert spoken_chars("9") == 4 and spoken_chars("is...") == 2 and spoken_chars("2024") == 14


def test_speech_after_the_last_word_the_asr_left_out_is_untranscribed() -> None:
    # "I think the number was..." with "was..." over the first digits and 0.7 s of the rest
    # after it: neither the word alone nor the short gap would show it
    audio = np.concatenate([_speech(1.4), _speech(1.5, 0.5), np.zeros(2000, np.float32)])
    words = [Word("I", 0.0, 0.2), Word("think", 0.2, 0.6), Word("the", 0.6, 0.8),
             Word("number", 0.8, 1.4), Word("was...", 1.4, 2.3)]  # fmt: skip
    duration = len(audio) / SAMPLE_RATE
    assert untranscribed_spans(words, duration) == []
    (span,) = untranscribed_spans(words, duration, audio=audio)
    assert (span.start_s, span.end_s) == (1.4, duration)
    # speech before the first word, beyond what a word could be, too
    lead = untranscribed_spans([Word("thanks", 0.7, 1.1)], 1.1, audio=_speech(1.1))
    assert [(s.start_s, s.end_s) for s in lead] == [(0.0, 0.7)]


def test_spans_holding_the_first_or_last_word_reach_the_snippet_edges() -> None:
    spans = [
        PiiSpan("PHONE", 0.4, 1.0, 0, 1),
        PiiSpan("NAME", 1.5, 1.9, 3, 3),
        PiiSpan("PIN", 2.2, 2.5, 5, 6),
    ]
    out = to_snippet_edges(spans, n_words=7, duration_s=3.2)
    assert [(s.type, s.start_s, s.end_s) for s in out] == [
        ("PHONE", 0.0, 1.0), ("NAME", 1.5, 1.9), ("PIN", 2.2, 3.2)
    ]
    assert to_snippet_edges([], n_words=0, duration_s=1.0) == []
    # untranscribed stretches (no words) are left alone
    gap = PiiSpan("UNTRANSCRIBED", 1.0, 2.0, -1, -1)
    assert to_snippet_edges([gap], n_words=3, duration_s=3.0) == [gap]


def _words_and_pauses(*parts: tuple[str, float]) -> np.ndarray:
    """("w", seconds) of speech or ("-", seconds) of silence, joined."""
    return np.concatenate([_speech(s) if kind == "w" else np.zeros(int(s * SR), np.float32)
                           for kind, s in parts])  # fmt: skip


def test_pauses_are_runs_of_at_least_50_ms_under_speech_level() -> None:
    audio = _words_and_pauses(("w", 0.5), ("-", 0.2), ("w", 0.3), ("-", 0.03), ("w", 0.2))
    assert pauses(audio) == [(0.5, 0.7)]  # 30 ms between words is not a pause
    assert pauses(np.zeros(0, np.float32)) == []


def test_the_edge_before_a_span_stops_at_the_pause_before_its_first_word() -> None:
    # "... is" [0.25 s pause] "four two ...": a word timing 0.12 s late, then one 0.1 s early
    audio = _words_and_pauses(("w", 1.0), ("-", 0.25), ("w", 1.0))
    quiet = pauses(audio)
    assert quiet == [(1.0, 1.25)]
    # late: a fixed margin (1.22) would leave 30 ms of the first digit; the edge is the pause
    assert edge_before(1.37, quiet, 0.15) == pytest.approx(1.2)
    # early, inside the pause: back by the margin at most, never into the word before
    assert edge_before(1.15, quiet, 0.15) == pytest.approx(1.0)
    assert edge_before(1.2, quiet, 0.15) == pytest.approx(1.05)
    # a first word timed 0.4 s late: the pause is still found, three margins back
    assert edge_before(1.65, quiet, 0.15) == pytest.approx(1.2)
    # no pause within three margins: the fixed margin
    assert edge_before(1.75, quiet, 0.15) == pytest.approx(1.6)
    assert edge_before(0.5, quiet, 0.15) == pytest.approx(0.35)


def test_the_edge_after_a_span_runs_on_to_the_pause_after_its_last_word() -> None:
    audio = _words_and_pauses(("w", 1.0), ("-", 0.25), ("w", 1.0))
    quiet = pauses(audio)
    # the timing ends 0.25 s early: the word goes on to the pause, and so does the redaction
    assert edge_after(0.75, quiet, 0.15) == pytest.approx(1.05)
    # inside the pause: on by the margin at most, never into the next word
    assert edge_after(1.15, quiet, 0.15) == pytest.approx(1.25)
    # no pause within two margins on: the fixed margin
    assert edge_after(0.4, quiet, 0.15) == pytest.approx(0.55)
    assert edge_after(0.65, quiet, 0.15) == pytest.approx(0.8)


def test_a_guide_places_the_redaction_at_the_pauses_and_keeps_the_next_word() -> None:
    # "my number is" | pause | "digits" | pause | "thanks"; the digits timed late at both ends
    audio = _words_and_pauses(("w", 1.0), ("-", 0.2), ("w", 1.5), ("-", 0.2), ("w", 0.6))
    span = PiiSpan("PHONE", 1.32, 2.6, 3, 6)
    fixed = redaction_intervals([span], len(audio), margin_s=0.15)
    guided = redaction_intervals([span], len(audio), margin_s=0.15, guide=audio)
    assert fixed == [(int(1.17 * SR), int(np.ceil(2.75 * SR)))]  # 30 ms of the digits heard
    assert guided == [(int(1.15 * SR), int(np.ceil(2.75 * SR)))]
    y = redact_audio(audio, [span], guide=audio)
    digits = slice(int(1.2 * SR), int(2.7 * SR))
    assert np.all(y[digits] == 0)
    assert np.array_equal(y[: int(1.0 * SR)], audio[: int(1.0 * SR)])  # "my number is" kept
    assert np.array_equal(y[int(2.9 * SR) :], audio[int(2.9 * SR) :])  # "thanks" kept
    # the same intervals whatever audio is redacted, given the same guide
    other = noise(len(audio) / SR)
    z = redact_audio(other, [span], guide=audio)
    assert np.all(z[digits] == 0) and np.array_equal(z[: int(1.0 * SR)], other[: int(1.0 * SR)])


def test_without_pauses_a_guide_changes_nothing() -> None:
    x = noise(3.0)
    spans = [PiiSpan("NAME", 1.0, 1.4), PiiSpan("PHONE", 2.0, 2.5)]
    assert redaction_intervals(spans, len(x), guide=x) == redaction_intervals(spans, len(x))


def test_edges_never_cut_into_the_span_itself() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        cuts = np.sort(rng.uniform(0, 5, 8))
        quiet = [(float(a), float(b)) for a, b in cuts.reshape(-1, 2)]
        start = float(rng.uniform(0, 4))
        end = start + float(rng.uniform(0, 1))
        assert edge_before(start, quiet, 0.15) <= start
        assert edge_before(start, quiet, 0.15) >= start - 0.5  # three margins and the cushion
        assert end <= edge_after(end, quiet, 0.15) <= end + 0.35


def test_replace_intervals_is_redact_audio_on_given_cuts() -> None:
    x = noise(2.0)
    spans = [PiiSpan("NAME", 0.5, 0.8), PiiSpan("PHONE", 1.2, 1.6)]
    cuts = redaction_intervals(spans, len(x), guide=x)
    assert np.array_equal(replace_intervals(x, cuts), redact_audio(x, spans, guide=x))
    with pytest.raises(ValueError):
        replace_intervals(np.zeros((2, 10), np.float32), cuts)
