"""Bleep personal data out of audio: each PII span (plus a margin) becomes silence or a tone.

The margin covers ASR word-timestamp error; raised-cosine cross-fades of about 10 ms at each
edge avoid clicks. The replacement is complete inside the faded edges, and samples outside
span+margin are left exactly as they were.

Silence is the default, chosen by measurement (`earshot eval --pii`): a 1 kHz tone made the
ASR (and so the reviewer's draft transcript) drop or hallucinate the ordinary words after
the bleep ("Please tell ..." instead of "Please tell [NAME] that the parcel arrived"), and it
does not survive voice conversion gracefully. The masked transcript shows what was removed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from earshot.pipeline.types import SAMPLE_RATE, Audio, PiiSpan, Word

TONE_HZ = 1000.0  # pass tone_hz=TONE_HZ for an audible bleep instead of silence
DEFAULT_LEVEL = 0.1  # -20 dBFS: clearly a bleep, never louder than speech


def redaction_intervals(
    spans: Sequence[PiiSpan], n_samples: int, *, margin_s: float = 0.15, sr: int = SAMPLE_RATE
) -> list[tuple[int, int]]:
    """Sample intervals [a, b) to replace: spans widened by the margin, clamped, merged."""
    raw: list[tuple[int, int]] = []
    for s in spans:
        start, end = float(s.start_s), float(s.end_s)
        if not np.isfinite(start) or not np.isfinite(end):
            continue
        if end < start:
            start, end = end, start
        a = max(0, int(np.floor((start - margin_s) * sr)))
        b = min(n_samples, int(np.ceil((end + margin_s) * sr)))
        if b > a:
            raw.append((a, b))
    raw.sort()
    merged: list[tuple[int, int]] = []
    for a, b in raw:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def redact_audio(
    audio: Audio,
    spans: Sequence[PiiSpan],
    *,
    margin_s: float = 0.15,
    tone_hz: float | None = None,
    level: float = DEFAULT_LEVEL,
    fade_s: float = 0.01,
    sr: int = SAMPLE_RATE,
) -> Audio:
    """A new array, same length, with every span (± margin) replaced by silence or a tone.

    `tone_hz=None` (default) gives silence; `tone_hz=TONE_HZ` a 1 kHz bleep at `level`.
    Each replaced stretch cross-fades from the original into the replacement and back over
    `fade_s` at its edges (inside the stretch), so there are no clicks and nothing outside
    span+margin changes.
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError("redact_audio expects mono audio (a 1-D array)")
    out = x.copy()
    fade_n = max(1, int(round(fade_s * sr)))
    for a, b in redaction_intervals(spans, len(x), margin_s=margin_s, sr=sr):
        n = b - a
        if tone_hz:
            t = np.arange(n, dtype=np.float64) / sr
            repl = (level * np.sin(2.0 * np.pi * tone_hz * t)).astype(np.float32)
        else:
            repl = np.zeros(n, dtype=np.float32)
        f = min(fade_n, n // 2)
        g = np.ones(n, dtype=np.float32)  # weight of the replacement
        if f > 0:
            ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(f) + 0.5) / f)).astype(np.float32)
            g[:f] = ramp
            g[n - f :] = ramp[::-1]
        out[a:b] = x[a:b] * (1.0 - g) + repl * g
    return out


def untranscribed_spans(
    words: Sequence[Word], duration_s: float, *, max_gap_s: float = 0.8
) -> list[PiiSpan]:
    """Stretches of a snippet longer than `max_gap_s` that no recognised word covers: before
    the first word, between words, after the last (type "UNTRANSCRIBED").

    The ASR could not check that audio for personal data - often it is exactly the digits
    or the spelled address it gave up on ("Please charge it to the card." followed by four
    seconds of card number). Redacting these too is the cautious choice; inside a VAD
    snippet a long gap is rarely a mere pause. first_word/last_word are -1 (no words).
    """
    out: list[PiiSpan] = []
    cursor = 0.0
    for w in [*words, Word("", duration_s, duration_s)]:
        start = min(max(float(w.start_s), 0.0), duration_s)
        if start - cursor > max_gap_s:
            out.append(PiiSpan("UNTRANSCRIBED", cursor, start, -1, -1))
        cursor = max(cursor, min(float(w.end_s), duration_s))
    return out
