"""ROVER-style word voting over several graders' transcripts (Fiscus 1997, without confidences).

The transcripts are aligned one after another into a word transition network: a list of columns, each
holding one word (or nothing) per transcript. Each column's majority wins, "nothing" included; a column
whose top count is shared by different words is a tie, which a lead decides.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from earshot.review.text import norm, words

Column = list[str | None]  # one surface word (or None) per transcript


@dataclass(frozen=True)
class Vote:
    """The consolidated transcript and the columns the vote could not decide."""

    text: str
    ties: list[int]  # indices of tied columns
    columns: list[Column]


def _matches(word: str, column: Column) -> bool:
    key = norm(word)
    return any(w is not None and norm(w) == key for w in column)


def align(transcripts: list[str]) -> list[Column]:
    """The word transition network of `transcripts` (aligned in the given order)."""
    columns: list[Column] = []
    for k, text in enumerate(transcripts):
        hyp = [w for w in words(text) if norm(w)]
        if k == 0:
            columns = [[w] for w in hyp]
            continue
        n, m = len(columns), len(hyp)
        # cost[i][j]: aligning the first i columns with the first j words
        cost = [[0] * (m + 1) for _ in range(n + 1)]
        for i in range(1, n + 1):
            cost[i][0] = i
        for j in range(1, m + 1):
            cost[0][j] = j
        for i in range(1, n + 1):
            for j in range(1, m + 1):
                sub = cost[i - 1][j - 1] + (0 if _matches(hyp[j - 1], columns[i - 1]) else 1)
                cost[i][j] = min(sub, cost[i - 1][j] + 1, cost[i][j - 1] + 1)
        merged: list[Column] = []
        i, j = n, m
        while i > 0 or j > 0:
            if i > 0 and j > 0:
                step = 0 if _matches(hyp[j - 1], columns[i - 1]) else 1
                if cost[i][j] == cost[i - 1][j - 1] + step:
                    merged.append(columns[i - 1] + [hyp[j - 1]])
                    i, j = i - 1, j - 1
                    continue
            if i > 0 and cost[i][j] == cost[i - 1][j] + 1:
                merged.append(columns[i - 1] + [None])
                i -= 1
            else:
                merged.append([None] * k + [hyp[j - 1]])
                j -= 1
        columns = merged[::-1]
    return columns


def vote(transcripts: list[str]) -> Vote:
    """Majority vote per column; ties keep the earliest transcript's word and are reported."""
    if not transcripts:
        return Vote("", [], [])
    columns = align(transcripts)
    out: list[str] = []
    ties: list[int] = []
    for index, column in enumerate(columns):
        counts = Counter(norm(w) if w is not None else None for w in column)
        ranked = counts.most_common()
        top = ranked[0][1]
        leaders = [key for key, c in ranked if c == top]
        if len(leaders) > 1:
            ties.append(index)
            winner = next(
                norm(w) if w is not None else None
                for w in column
                if (norm(w) if w is not None else None) in leaders
            )
        else:
            winner = leaders[0]
        if winner is None:
            continue
        surfaces = Counter(w for w in column if w is not None and norm(w) == winner)
        out.append(surfaces.most_common(1)[0][0])
    return Vote(" ".join(out), ties, columns)
