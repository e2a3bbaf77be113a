"""Digit runs said by real people, for `earshot eval --pii --pii-digits MANIFEST.tsv`.

The PII sentences of `pii_eval` are synthetic (espeak-ng). Here the values are real human
speech: isolated spoken digits of one speaker (a manifest whose transcripts are single digit
words, such as the Free Spoken Digit Dataset's 8 kHz recordings) joined into the numbers a
caller reads out, grouped as people say them: short pauses inside a group, longer ones
between groups. Half the numbers are heard alone (a caller reading one out); the other half
sit inside a synthetic carrier sentence ("My account number is ... ."). The carrier's voice
is espeak's, so that form joins two voices and two channels, harsher on the ASR than a real
call: a stress test, reported apart.

Audio lives in memory only; the values are random.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from earshot.evaluation.manifest import ManifestError, load_audio, read_manifest
from earshot.evaluation.pii_eval import _card, _phone, _rand_digits, join_parts
from earshot.pipeline.pii_spoken import DIGIT_WORDS, UNITS
from earshot.pipeline.types import SAMPLE_RATE, Audio

FORM_ALONE = "real, alone"
FORM_SENTENCE = "real, in a sentence"
_PEAK = 0.7  # every number is brought to this peak: recordings differ in level


@dataclass(frozen=True)
class RealDigitItem:
    """One number as heard: who said it, what was planted, the audio and where its parts are."""

    voice: str  # "real:<speaker>"
    type: str  # PHONE, CARD, ACCOUNT, SORT_CODE, PIN, CODE
    form: str  # FORM_ALONE or FORM_SENTENCE
    value: str  # the digits
    parts: tuple[str, str, str]  # carrier before, the digits as words, carrier after
    audio: Audio
    extents: dict[str, tuple[float, float]]  # "value" (first digit to last), "before", "after"


class DigitBank:
    """Recordings of single spoken digits per speaker, read from a manifest, loaded on use."""

    def __init__(self, takes: dict[str, dict[str, list[Path]]]) -> None:
        self.takes = takes
        self._cache: dict[Path, Audio] = {}

    @classmethod
    def from_manifest(cls, manifest: Path) -> DigitBank:
        """Every row whose transcript is one digit ("zero".."nine", "oh" or "0".."9"); a speaker
        is kept when they said all ten. No usable speaker is a ManifestError."""
        takes: dict[str, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
        for row in read_manifest(Path(manifest)):
            digit = _digit_of(row.transcript)
            if digit is not None:
                takes[row.speaker][digit].append(row.path)
        full = {s: dict(d) for s, d in takes.items() if len(d) == 10}
        if not full:
            raise ManifestError(
                "no speaker in the digit manifest said all ten digits as single-word utterances"
            )
        return cls(dict(sorted(full.items())))

    @property
    def speakers(self) -> list[str]:
        return list(self.takes)

    def say(self, speaker: str, digit: str, rng: random.Random) -> Audio:
        """One recording of `digit` by `speaker`, picked at random (16 kHz)."""
        path = rng.choice(self.takes[speaker][digit])
        if path not in self._cache:
            self._cache[path] = load_audio(path)
        return self._cache[path]


def _digit_of(text: str) -> str | None:
    word = text.strip().lower().strip(".,")
    if len(word) == 1 and word.isdigit():
        return word
    value = UNITS.get(word)
    return str(value) if isinstance(value, int) and 0 <= value <= 9 else None


def _silence(rng: random.Random, lo_s: float, hi_s: float) -> Audio:
    return np.zeros(int(rng.uniform(lo_s, hi_s) * SAMPLE_RATE), np.float32)


def number_audio(bank: DigitBank, speaker: str, groups: list[str], rng: random.Random) -> Audio:
    """`groups` of digits said by `speaker`: 40-120 ms between digits, 250-450 ms between groups."""
    out: list[Audio] = []
    for g, group in enumerate(groups):
        if g:
            out.append(_silence(rng, 0.25, 0.45))
        for i, digit in enumerate(group):
            if i:
                out.append(_silence(rng, 0.04, 0.12))
            out.append(bank.say(speaker, digit, rng))
    x = np.concatenate(out).astype(np.float32)
    peak = float(np.abs(x).max())
    return x * (_PEAK / peak) if peak > 0 else x


def grouped(typ: str, digits: str) -> list[str]:
    """How a caller groups a number of this type when reading it out."""
    sizes = {"CARD": [4, 4, 4, 4], "ACCOUNT": [4, 4], "SORT_CODE": [2, 2, 2], "PIN": [4],
             "CODE": [3, 3]}.get(typ)  # fmt: skip
    if sizes is None:  # PHONE: UK mobile 5-3-3, US 3-3-4
        sizes = [5, 3, 3] if len(digits) == 11 else [3, 3, 4]
    out, i = [], 0
    for n in sizes:
        out.append(digits[i : i + n])
        i += n
    return out


def build_items(
    bank: DigitBank,
    rng: random.Random,
    *,
    per_speaker: int = 8,
    carrier: Callable[[str], tuple[str, str, Audio, Audio]] | None = None,
) -> list[RealDigitItem]:
    """`per_speaker` numbers for every speaker, types in turn, alone and in a sentence in turn.

    `carrier(type)` gives (text before, text after, their audio): the synthetic sentence
    around a number of that type; None hears every number alone.
    """
    makers: list[tuple[str, Callable[[], str]]] = [
        ("PHONE", lambda: _phone(rng)),
        ("ACCOUNT", lambda: _rand_digits(rng, 8)),
        ("CODE", lambda: _rand_digits(rng, 6)),
        ("CARD", lambda: _card(rng)),
        ("PIN", lambda: _rand_digits(rng, 4)),
        ("SORT_CODE", lambda: _rand_digits(rng, 6)),
    ]
    items: list[RealDigitItem] = []
    for s_i, speaker in enumerate(bank.speakers):
        for k in range(per_speaker):
            typ, make = makers[(s_i + k) % len(makers)]
            digits = make()
            groups = grouped(typ, digits)
            number = number_audio(bank, speaker, groups, rng)
            said = ", ".join(" ".join(DIGIT_WORDS[int(d)] for d in g) for g in groups)
            if carrier is None or k % 2 == 0:
                pad = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
                audio, extents = join_parts([("", pad), ("value", number), ("", pad)])
                items.append(RealDigitItem(f"real:{speaker}", typ, FORM_ALONE, digits,
                                           ("", said, ""), audio, extents))  # fmt: skip
                continue
            before, after, a_before, a_after = carrier(typ)
            gap = np.zeros(int(0.15 * SAMPLE_RATE), np.float32)
            pieces = [("before", a_before), ("", gap), ("value", number), ("", gap), ("after", a_after)]
            audio, extents = join_parts([(role, piece) for role, piece in pieces if len(piece)])
            items.append(RealDigitItem(f"real:{speaker}", typ, FORM_SENTENCE, digits,
                                       (before, said, after), audio, extents))  # fmt: skip
    return items

