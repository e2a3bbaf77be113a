"""Bleep personal data out of audio: each PII span (plus a margin) becomes silence or a tone.

The margin covers ASR word-timestamp error; raised-cosine cross-fades of about 10 ms at each
edge avoid clicks. The replacement is complete inside the faded edges, and samples outside
the replaced intervals are left exactly as they were. Given the snippet's own audio
(`guide`), each edge is placed at a pause where one is near (`edge_before`, `edge_after`):
what lies beyond a pause is another word, and a span whose timing stops short inside speech
is carried on to the pause.

Silence is the default, chosen by measurement (`earshot eval --pii`): a 1 kHz tone made the
ASR (and so the reviewer's draft transcript) drop or hallucinate the ordinary words after
the bleep ("Please tell ..." instead of "Please tell [NAME] that the parcel arrived"), and it
does not survive voice conversion gracefully. The masked transcript shows what was removed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from earshot.pipeline.pii_spoken import DIGIT_WORDS
from earshot.pipeline.types import SAMPLE_RATE, Audio, PiiSpan, Word

TONE_HZ = 1000.0  # pass tone_hz=TONE_HZ for an audible bleep instead of silence
DEFAULT_LEVEL = 0.1  # -20 dBFS: clearly a bleep, never louder than speech


# A pause: at least 50 ms of frames under speech level (`speech_frames`). An edge stops 50 ms
# inside it, so a weak onset or ending that the energy threshold missed is still covered. The
# edge before a span looks for one up to three margins back, the edge after up to two on: on
# real digits after a carrier (`scripts/word_timing.py`) a number's first digit is timed a median
# 0.19-0.21 s late (90th percentile 0.35-0.42 s), a word's end 0.06-0.13 s late. When the word
# before took the pause into its own timing, no gap is left for `pii._span_times` to widen over.
_PAUSE_S = 0.05
_CUSHION_S = 0.05
_REACH_BEFORE = 3.0  # margins
_REACH_AFTER = 2.0


def pauses(audio: Audio, *, min_s: float = _PAUSE_S, sr: int = SAMPLE_RATE) -> list[tuple[float, float]]:
    """(start, end) seconds of every run of at least `min_s` under speech level in `audio`."""
    active = speech_frames(audio, sr=sr)
    edges = np.flatnonzero(np.diff(np.concatenate(([1], active.astype(np.int8), [1]))))
    runs = edges.reshape(-1, 2) * _FRAME_S  # pairs: first quiet frame, first active frame after
    return [(round(float(a), 3), round(float(b), 3)) for a, b in runs if b - a >= min_s - 1e-9]


def edge_before(start_s: float, quiet: Sequence[tuple[float, float]], margin_s: float) -> float:
    """Where the replacement before a span starting at `start_s` begins.

    - The span's timing starts in a pause: the word has not begun, so back at most `margin_s`
      but never past the pause into the speech before it.
    - A pause ends up to 3 x `margin_s` before: 50 ms before that pause ends (the speech in
      between is the span's first word, timed late; before the pause is another word).
    - No pause near: `margin_s` before, as without a guide.
    """
    for a, b in quiet:
        if a <= start_s < b:
            return max(a, start_s - margin_s)
    near = [(a, b) for a, b in quiet if start_s - _REACH_BEFORE * margin_s <= b <= start_s]
    if near:
        a, b = near[-1]
        return max(a, b - _CUSHION_S)
    return start_s - margin_s


def edge_after(end_s: float, quiet: Sequence[tuple[float, float]], margin_s: float) -> float:
    """Where the replacement after a span ending at `end_s` ends: `edge_before` mirrored, with
    a pause looked for up to 2 x `margin_s` on (word ends are timed less late than starts)."""
    for a, b in quiet:
        if a <= end_s < b:
            return min(b, end_s + margin_s)
    near = [(a, b) for a, b in quiet if end_s <= a <= end_s + _REACH_AFTER * margin_s]
    if near:
        a, b = near[0]
        return min(b, a + _CUSHION_S)
    return end_s + margin_s


def redaction_intervals(
    spans: Sequence[PiiSpan],
    n_samples: int,
    *,
    margin_s: float = 0.15,
    sr: int = SAMPLE_RATE,
    guide: Audio | None = None,
) -> list[tuple[int, int]]:
    """Sample intervals [a, b) to replace: spans widened by the margin, clamped, merged.

    With `guide` (the snippet's audio, sample-aligned), each edge is placed at a nearby pause
    instead (`edge_before`, `edge_after`). Word timings on real speech run late (FSDD digit
    strings: starts a median 0.11 s, ends 0.06-0.13 s), so a fixed margin cuts into the word
    before a span and can stop inside the span's own first word; a pause is where a word ends.
    """
    quiet = pauses(guide, sr=sr) if guide is not None else None
    raw: list[tuple[int, int]] = []
    for s in spans:
        start, end = float(s.start_s), float(s.end_s)
        if not np.isfinite(start) or not np.isfinite(end):
            continue
        if end < start:
            start, end = end, start
        if quiet is None:
            lo, hi = start - margin_s, end + margin_s
        else:
            lo, hi = edge_before(start, quiet, margin_s), edge_after(end, quiet, margin_s)
        a = max(0, int(np.floor(lo * sr)))
        b = min(n_samples, int(np.ceil(hi * sr)))
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
    guide: Audio | None = None,
) -> Audio:
    """A new array, same length, with every span (± margin) replaced by silence or a tone.

    `tone_hz=None` (default) gives silence; `tone_hz=TONE_HZ` a 1 kHz bleep at `level`.
    Each replaced stretch cross-fades from the original into the replacement and back over
    `fade_s` at its edges (inside the stretch), so there are no clicks and nothing outside
    the replaced intervals changes. `guide`: place the edges at its pauses
    (`redaction_intervals`); pass the snippet before the voice change to redact both the
    same way.
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError("redact_audio expects mono audio (a 1-D array)")
    intervals = redaction_intervals(spans, len(x), margin_s=margin_s, sr=sr, guide=guide)
    return replace_intervals(x, intervals, tone_hz=tone_hz, level=level, fade_s=fade_s, sr=sr)


def replace_intervals(
    audio: Audio,
    intervals: Sequence[tuple[int, int]],
    *,
    tone_hz: float | None = None,
    level: float = DEFAULT_LEVEL,
    fade_s: float = 0.01,
    sr: int = SAMPLE_RATE,
) -> Audio:
    """A new array, same length, with each sample interval [a, b) (`redaction_intervals`)
    replaced as `redact_audio` describes: for redacting two versions of one snippet alike."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError("replace_intervals expects mono audio (a 1-D array)")
    out = x.copy()
    fade_n = max(1, int(round(fade_s * sr)))
    for a, b in intervals:
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


def to_snippet_edges(spans: Sequence[PiiSpan], n_words: int, duration_s: float) -> list[PiiSpan]:
    """`spans` with one that holds the snippet's first word reaching back to its start, and one
    that holds its last word reaching on to its end.

    Nothing the ASR recognised lies beyond such a span, so widening it costs no ordinary word;
    what is there is often more of the same value that the ASR dropped ("92744." for a number
    that ends "... four four one", the "one" left after the last word's timing).
    """
    out = []
    for s in spans:
        start = 0.0 if s.first_word == 0 else s.start_s
        end = duration_s if n_words and s.last_word == n_words - 1 else s.end_s
        out.append(PiiSpan(s.type, start, max(start, end), s.first_word, s.last_word))
    return out


def untranscribed_spans(
    words: Sequence[Word],
    duration_s: float,
    *,
    max_gap_s: float = 0.8,
    audio: Audio | None = None,
) -> list[PiiSpan]:
    """Stretches of a snippet that no recognised word accounts for (type "UNTRANSCRIBED").

    - Longer than `max_gap_s` with no word at all: before the first word, between words,
      after the last.
    - With `audio`: a word whose stretch (to the next word, or the snippet's end) holds far
      more speech than the word takes to say (`unaccounted_speech`). When Whisper gives up
      on a stretch ("My pin is..." and four digits), it often stretches the last word it did
      recognise over part of it, and leaves the rest as a gap too short for the rule above.

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
    if audio is not None:
        out += unaccounted_speech(words, audio)
    return sorted(out, key=lambda s: s.start_s)


# A word's speech, up to the next word, lasts at most about 0.1 s per spoken letter plus 0.29 s
# on real speech (the most in 628 words of RAVDESS and LibriSpeech in the product's snippets,
# drawn-out emotional readings included; 0.34 s in a second sample of 623); the slack adds a
# margin over that. A stretch taken for untranscribed in error is only silenced.
_S_PER_CHAR = 0.1
_SLACK_S = 0.4
_FRAME_S = 0.01
_DIGIT_CHARS = {str(i): len(w) for i, w in enumerate(DIGIT_WORDS)}


def speech_frames(audio: Audio, *, sr: int = SAMPLE_RATE) -> np.ndarray:
    """One flag per 10 ms frame: speech-level energy (within 30 dB of the snippet's loud
    frames, the 95th percentile, and above -60 dBFS). Cheap; no model."""
    f = int(_FRAME_S * sr)
    n = len(audio) // f
    if n == 0:
        return np.zeros(0, dtype=bool)
    x = np.asarray(audio[: n * f], dtype=np.float64).reshape(n, f)
    db = 10 * np.log10(np.mean(x * x, axis=1) + 1e-12)
    return (db > np.percentile(db, 95) - 30.0) & (db > -60.0)


def spoken_chars(text: str) -> int:
    """Letters of `text` as said: a numeral counts as its spelled digits ("9" -> 4)."""
    return sum(_DIGIT_CHARS.get(c, 1) for c in text if c.isalnum())


def unaccounted_speech(
    words: Sequence[Word], audio: Audio, *, sr: int = SAMPLE_RATE
) -> list[PiiSpan]:
    """Stretches holding more speech than their words take to say: from each word's start to
    the next word's (the last: to the end), beyond `0.1 s x spoken letters + 0.4 s`, and
    before the first word, beyond 0.4 s. The whole stretch, word included, is returned."""
    active = speech_frames(audio, sr=sr)
    duration_s = len(audio) / sr
    starts = [min(max(float(w.start_s), 0.0), duration_s) for w in words]
    stretches = [(0.0, starts[0] if words else duration_s, "")]
    stretches += [
        (starts[i], starts[i + 1] if i + 1 < len(words) else duration_s, w.text)
        for i, w in enumerate(words)
    ]
    out: list[PiiSpan] = []
    for start, end, text in stretches:
        a, b = int(start / _FRAME_S), min(len(active), int(np.ceil(end / _FRAME_S)))
        speech_s = float(active[a:b].sum()) * _FRAME_S if b > a else 0.0
        if speech_s > _S_PER_CHAR * spoken_chars(text) + _SLACK_S:
            out.append(PiiSpan("UNTRANSCRIBED", start, end, -1, -1))
    return out
