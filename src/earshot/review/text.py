"""Words of a transcript for comparison: normalisation, edit distance and word error rate.

Comparison ignores case and punctuation but keeps mask tokens such as `[PHONE]` whole, so graders who
differ only in capitals or commas agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher

_TOKEN = re.compile(r"\[[A-Z_]+\]|[^\s]+")
_MASK = re.compile(r"^\[[A-Z_]+\][.,;:!?]?$")
_STRIP = re.compile(r"^[^\w\[\]']+|[^\w\[\]']+$")


def words(text: str) -> list[str]:
    """The surface words of a transcript (split on white space)."""
    return _TOKEN.findall(text or "")


def norm(word: str) -> str:
    """A word's comparison form: mask tokens as they are, others lower-cased without edge punctuation."""
    if word.startswith("[") and word.endswith("]"):
        return word
    return _STRIP.sub("", word.lower())


def norm_words(text: str) -> list[str]:
    """Normalised, non-empty words of a transcript."""
    return [w for w in (norm(t) for t in words(text)) if w]


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences (substitution, insertion, deletion cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of `hypothesis` against `reference` (1.0 when the reference is empty and not the
    hypothesis, 0.0 when both are)."""
    ref, hyp = norm_words(reference), norm_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


def pairwise_wer(a: str, b: str) -> float:
    """Symmetric WER between two graders: the mean of WER(a, b) and WER(b, a)."""
    return (wer(a, b) + wer(b, a)) / 2


def only_masks_added(old: str, new: str) -> bool:
    """True when `new` is `old` with one or more runs of words replaced by mask tokens (`[OTHER]`, ...)
    and nothing else changed: how a reviewer may mask personal data in the machine transcript."""
    a, b = (old or "").split(), (new or "").split()
    replaced = False
    for op, i1, i2, j1, j2 in SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        if op != "replace" or not all(_MASK.match(w) for w in b[j1:j2]) or i2 <= i1:
            return False
        replaced = True
    return replaced
