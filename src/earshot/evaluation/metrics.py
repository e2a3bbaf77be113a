"""Scoring metrics for the de-identification evaluation: EER / DET for speaker verification, WER.

Kept free of heavy imports so it is cheap to test and reuse.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EerResult:
    """Equal error rate (fraction, 0..1) and the score threshold where it occurs."""

    eer: float
    threshold: float
    n_target: int
    n_nontarget: int


def det_points(target: np.ndarray, nontarget: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss and false-alarm rates for every threshold (accept when score >= threshold).

    Returns (p_miss, p_fa, thresholds), with thresholds increasing; p_miss rises, p_fa falls.
    """
    tgt = np.sort(np.asarray(target, dtype=np.float64).ravel())
    non = np.sort(np.asarray(nontarget, dtype=np.float64).ravel())
    if tgt.size == 0 or non.size == 0:
        raise ValueError("EER needs at least one target and one non-target score")
    uniq = np.unique(np.concatenate([tgt, non]))
    thr = np.concatenate([uniq, [uniq[-1] + 1.0]])
    p_miss = np.searchsorted(tgt, thr, side="left") / tgt.size
    p_fa = 1.0 - np.searchsorted(non, thr, side="left") / non.size
    return p_miss, p_fa, thr


def compute_eer(target: np.ndarray, nontarget: np.ndarray) -> EerResult:
    """Equal error rate: where the miss rate equals the false-alarm rate on the DET curve.

    Between the two attainable operating points around the crossing, it is linearly
    interpolated. 0 = perfect attacker, 0.5 = chance.
    """
    miss, fa, thr = det_points(target, nontarget)
    diff = miss - fa  # rises from -1 to +1
    i = int(np.argmax(diff >= 0))
    if i == 0:
        return EerResult(float(miss[0]), float(thr[0]), len(np.ravel(target)), len(np.ravel(nontarget)))
    d0, d1 = diff[i - 1], diff[i]
    w = 0.0 if d1 == d0 else -d0 / (d1 - d0)
    eer = (1 - w) * ((miss[i - 1] + fa[i - 1]) / 2) + w * ((miss[i] + fa[i]) / 2)
    thr_eer = (1 - w) * thr[i - 1] + w * thr[i]
    return EerResult(float(eer), float(thr_eer), len(np.ravel(target)), len(np.ravel(nontarget)))


def wilson_interval(hits: int, n: int, *, z: float = 1.96) -> tuple[float, float] | None:
    """95 % (by default) Wilson score interval of a proportion `hits / n`; None when n is 0.

    The small-sample interval for recall counts such as 359/378: unlike the normal
    approximation it stays inside [0, 1] and is not empty at 0/n or n/n.
    """
    if n <= 0:
        return None
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def cluster_bootstrap(
    clusters: Sequence[str],
    statistic: Callable[[list[str]], float],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile interval of `statistic` over resamples of `clusters` drawn with replacement.

    The clusters are speakers: trials and utterances of one speaker are not independent, so
    they are resampled together (a speaker drawn twice counts twice). None with under two
    clusters. Seeded, so a report is reproducible.
    """
    names = sorted(set(clusters))
    if len(names) < 2:
        return None
    rng = np.random.default_rng(seed)
    values = [statistic([names[i] for i in rng.integers(0, len(names), len(names))]) for _ in range(n_boot)]
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def errors_per_utterance(references: list[str], hypotheses: list[str]) -> list[tuple[int, int]]:
    """(word errors, reference words) of each pair, after `normalise_text`: the terms whose
    sums make `word_error_rate`, for resampling it by speaker."""
    import jiwer

    if len(references) != len(hypotheses):
        raise ValueError("references and hypotheses differ in length")
    out = []
    for ref, hyp in zip(references, hypotheses, strict=True):
        r, h = normalise_text(ref), normalise_text(hyp)
        if not r:
            out.append((0, 0))
            continue
        w = jiwer.process_words(r, h)
        out.append((w.substitutions + w.deletions + w.insertions, len(r.split())))
    return out


_NUMBERS = {
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four",
    "5": "five", "6": "six", "7": "seven", "8": "eight", "9": "nine",
}


def normalise_text(text: str) -> str:
    """Lower-case, drop punctuation, spell every digit as a word, collapse spaces (Whisper-style
    light). Digit by digit, so "7, 3, 1", "731" and "seven three one" all count the same: the
    way a digit string is written says nothing about whether it was heard."""
    t = text.lower().replace("’", "'")
    t = re.sub(r"[^a-z0-9' ]+", " ", t)
    t = re.sub(r"\d", lambda m: f" {_NUMBERS[m.group()]} ", t)
    t = re.sub(r"'(?!\w)|(?<!\w)'", " ", t)
    return " ".join(t.split())


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER (fraction) of `hypotheses` against `references`, after `normalise_text`."""
    return corpus_wer(errors_per_utterance(references, hypotheses))


def corpus_wer(errors: Sequence[tuple[int, int]]) -> float:
    """Corpus WER (fraction) from `errors_per_utterance`: all errors over all reference words."""
    words = sum(n for _, n in errors)
    if not words:
        raise ValueError("no non-empty reference")
    return sum(e for e, _ in errors) / words
