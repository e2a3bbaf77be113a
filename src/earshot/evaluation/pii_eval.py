"""How much planted personal data survives de-identification (`earshot eval --pii`).

Sentences with planted PII (phones, cards, account numbers, sort codes, PINs and codes, SSNs,
e-mails, names, street addresses, dates of birth; digits said one by one, with "oh" and
"double", as grouped numbers, and as written digit strings read by the synthesiser) are
spoken by espeak-ng in several voices, held in memory only. Each goes through the real
de-identification path (`DeidPipeline().process`, or ASR + `detect_pii` + `redact_audio`
while that is unavailable). An attacker then runs an ASR on the de-identified audio.

Measured, per PII type:
- audio recall: 1 - share of planted values the attacker ASR still recovers from the output,
  among those it recovers from the original audio (and over all planted values);
- transcript recall: the same for the masked transcript a reviewer reads;
- precision: masked words that were not personal data (ordinary words of the sentences
  and whole PII-free control sentences);
- retained non-PII words: share of the ordinary words still heard by ASR in the output and
  still in the masked transcript; with the real pipeline also after the bleeps alone (no
  voice change), to tell the two stages' costs apart;
- speech coverage: share of planted values whose speech (known exactly: the value is
  synthesised as its own piece) is >= 90 % inside a redacted stretch or outside every
  snippet - what a human listener, not just an ASR, could still hear.

With a digit bank (`--pii-digits`), numbers said by real people are planted too and
summarised apart (`evaluation.real_digits`).

Values are synthetic; nothing here stores audio.
"""

from __future__ import annotations

import difflib
import inspect
import io
import json
import random
import shutil
import subprocess
import time
import wave
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from earshot.evaluation.manifest import telephone_band
from earshot.pipeline.pii_spoken import UNITS, clean, find_number_runs, luhn_ok
from earshot.pipeline.types import SAMPLE_RATE, Audio, PiiSpan, Transcript

if TYPE_CHECKING:  # real_digits builds on this module
    from earshot.evaluation.real_digits import DigitBank

DEFAULT_VOICES = ["en-us", "en-us+f2", "en-gb-x-rp+m3"]
DIGIT_TYPES = ("PHONE", "CARD", "ACCOUNT", "SORT_CODE", "PIN", "CODE", "SSN")
TARGETS = {"digits_recall_min": 0.95, "email_recall_min": 0.95, "name_recall_min": 0.85,
           "non_pii_kept_min": 0.80}  # fmt: skip

_DIGIT_WORD = {str(k): v for v, k in UNITS.items() if v not in ("o", "nought", "naught")}
_DIGIT_WORD["0"] = "oh"


@dataclass
class Planted:
    """One test sentence: what espeak says, the planted value and the ordinary words."""

    type: str  # PII type, or "NONE" for a control sentence
    form: str  # how the value is said: digits, oh-double, grouped, written, spoken, ...
    say: str  # text given to espeak-ng
    value: str  # canonical value: digits, e-mail local part words, name / street words
    other_words: list[str] = field(default_factory=list)  # non-PII words of the sentence
    parts: tuple[str, str, str] = ("", "", "")  # text before the value, the value, after


# ------------------------------------------------------------------------ sentence bank

_FIRST = ["Jane", "Robert", "Priya", "Siobhan", "Tariq", "Mei", "Olusegun", "Ingrid", "Mateo",
          "Aisha", "Dmitri", "Keiko", "Lucas", "Fatima", "Kwame", "Zofia", "Rahul", "Nadia",
          "Graham", "Esther"]  # fmt: skip
_LAST = ["Doe", "Okafor", "Kowalczyk", "Nguyen", "Fitzgerald", "Haddad", "Lindqvist", "Tanaka",
         "Moreau", "Adeyemi", "Brennan", "Castillo", "Whitfield", "Petrov", "Sandoval",
         "Mbeki", "Harrington", "Delgado"]  # fmt: skip
_STREETS = ["Maple", "Juniper", "Harbour", "Chestnut", "Willow", "Kingsley", "Elm", "Rosewood",
            "Ashford", "Larch"]  # fmt: skip
_SUFFIXES = ["Street", "Road", "Avenue", "Lane", "Drive"]
_DOMAINS = [("gmail", "com"), ("example", "com"), ("outlook", "com"), ("mail", "co dot uk"),
            ("yahoo", "com")]  # fmt: skip
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]  # fmt: skip
_ORD = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
        "seventeenth", "eighteenth", "nineteenth", "twentieth", "twenty first",
        "twenty second", "twenty third", "twenty fourth", "twenty fifth", "twenty sixth",
        "twenty seventh", "twenty eighth"]  # fmt: skip
_UNITS_W = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEENS_W = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
            "seventeen", "eighteen", "nineteen"]  # fmt: skip
_TENS_W = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

_TEMPLATES: dict[str, list[str]] = {
    "PHONE": ["My phone number is {v}.", "You can reach me on {v} after six.",
              "Call me back at {v} please.", "Text me on {v} when you get there."],
    "CARD": ["My card number is {v}.", "Please charge it to the card {v} thanks.",
             "The long number on my debit card is {v}."],
    "ACCOUNT": ["My account number is {v}.", "The reference on the letter is {v}.",
                "Transfer it to account {v} today."],
    "SORT_CODE": ["The sort code is {v}.", "Sort code {v}, same branch as before."],
    "PIN": ["My pin is {v}.", "I think the pin number was {v}."],
    "CODE": ["The verification code is {v}.", "They sent me the code {v} by text."],
    "SSN": ["My social security number is {v}."],
    "EMAIL": ["My email is {v}.", "Send the details to {v} please.",
              "You can write to me at {v} any time."],
    "NAME": ["My name is {v}.", "Hi, this is {v} calling about my order.",
             "Could you ask for {v} at the front desk?",
             "I was talking with {v} yesterday about the trip.",
             "Please tell {v} that the parcel arrived."],
    "ADDRESS": ["I live at {v}.", "Please deliver it to {v} tomorrow morning.",
                "The house is at {v}, next to the school."],
    "DATE_OF_BIRTH": ["I was born on {v}.", "My date of birth is {v}."],
}  # fmt: skip
_CONTROLS = [
    "I have two dogs and a cat at home.",
    "Call me back tomorrow if you have time.",
    "The meeting starts at ten thirty on Monday.",
    "Can you turn the volume up a little bit?",
    "We walked along the river for about an hour.",
    "Please remind me to buy milk and bread.",
    "It was a long day but the weather was lovely.",
    "Set a timer for twenty minutes please.",
]


def _digits_said(digits: str, rng: random.Random, form: str) -> str:
    """How a digit string is said: one by one, with oh/double, grouped pairs, or written."""
    if form == "written":
        return _written_groups(digits)
    if form == "grouped":
        parts = [digits[i : i + 2] for i in range(0, len(digits), 2)]
        return ", ".join(_pair_words(p) for p in parts)
    words: list[str] = []
    i = 0
    while i < len(digits):
        d = digits[i]
        if form == "oh-double" and i + 1 < len(digits) and digits[i + 1] == d:
            words.append("double " + _DIGIT_WORD[d])
            i += 2
            continue
        words.append(_DIGIT_WORD[d] if form == "oh-double" or d != "0" else "zero")
        i += 1
        if i % 4 == 0 and i < len(digits):
            words[-1] += ","
    return " ".join(words)


def _pair_words(p: str) -> str:
    if len(p) == 1 or p[0] == "0":
        return " ".join(_DIGIT_WORD[c] for c in p)
    n = int(p)
    if n < 20:
        return _TEENS_W[n - 10]
    return (_TENS_W[n // 10] + (" " + _UNITS_W[n % 10] if n % 10 else "")).strip()


def _written_groups(digits: str) -> str:
    if len(digits) in (8, 16):
        return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
    if len(digits) == 11:
        return f"{digits[:5]} {digits[5:8]} {digits[8:]}"
    if len(digits) == 7:
        return f"{digits[:3]} {digits[3:]}"
    if len(digits) == 10:
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    if len(digits) == 9:
        return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"
    if len(digits) == 6:
        return f"{digits[:2]}-{digits[2:4]}-{digits[4:]}"
    return digits


def _rand_digits(rng: random.Random, n: int, first_nonzero: bool = True) -> str:
    s = str(rng.randint(1, 9)) if first_nonzero else str(rng.randint(0, 9))
    return s + "".join(str(rng.randint(0, 9)) for _ in range(n - 1))


def _card(rng: random.Random) -> str:
    body = "4" + _rand_digits(rng, 14, first_nonzero=False)
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("unreachable")


def _phone(rng: random.Random) -> str:
    if rng.random() < 0.5:  # US style
        return str(rng.choice([212, 415, 617, 303, 512])) + "55501" + _rand_digits(rng, 2, False)
    return "07" + str(rng.randint(100, 999)) + _rand_digits(rng, 6, False)  # UK mobile


def _with_repeat(digits: str, rng: random.Random) -> str:
    """Make sure a value has a doubled digit so "double" gets exercised."""
    i = rng.randrange(1, len(digits) - 1)
    return digits[: i + 1] + digits[i] + digits[i + 1 : -1] if len(digits) > 3 else digits


def _year_words(year: int) -> str:
    hi, lo = divmod(year, 100)
    hi_w = _pair_words(str(hi))
    lo_w = "hundred" if lo == 0 else (("oh " + _UNITS_W[lo]) if lo < 10 else _pair_words(str(lo)))
    return f"{hi_w} {lo_w}"


def build_sentences(rng: random.Random, per_type: int = 4) -> list[Planted]:
    """Planted-PII sentences covering every type and spoken/written form, plus controls."""
    out: list[Planted] = []
    digit_forms = ["digits", "oh-double", "written", "grouped"]
    makers: dict[str, Callable[[], str]] = {
        "PHONE": lambda: _phone(rng),
        "CARD": lambda: _card(rng),
        "ACCOUNT": lambda: _rand_digits(rng, 8),
        "SORT_CODE": lambda: _rand_digits(rng, 6),
        "PIN": lambda: _rand_digits(rng, 4),
        "CODE": lambda: _rand_digits(rng, 6),
        "SSN": lambda: _rand_digits(rng, 9),
    }
    for typ, make in makers.items():
        for k in range(per_type):
            form = digit_forms[k % len(digit_forms)]
            if typ == "CARD" and form == "grouped":
                form = "digits"
            digits = make()
            if form == "oh-double":
                digits = _with_repeat(digits, rng)
                if typ == "CARD":
                    digits = next(digits[:-1] + c for c in "0123456789" if luhn_ok(digits[:-1] + c))
            said = _digits_said(digits, rng, form)
            out.append(_fill(typ, form, rng, said, digits))
    for k in range(per_type):
        first = rng.choice(_FIRST).lower()
        last = rng.choice(_LAST).lower()
        num = rng.randint(1, 99)
        dom, tld = _DOMAINS[k % len(_DOMAINS)]
        sep = ["dot", "underscore", "dot", ""][k % 4]
        local_said = f"{first} {sep} {last}" if sep else f"{first}{num}"
        local_val = f"{first} {last}" if sep else f"{first} {num}"
        out.append(_fill("EMAIL", "spoken", rng, f"{local_said} at {dom} dot {tld}", local_val))
    for k in range(per_type + 2):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        value = f"{first} {last}" if k % 3 != 2 else first
        out.append(_fill("NAME", "spoken", rng, value, value))
    for _ in range(per_type):
        num = rng.randint(2, 240)
        street = f"{rng.choice(_STREETS)} {rng.choice(_SUFFIXES)}"
        out.append(_fill("ADDRESS", "spoken", rng, f"{num} {street}", f"{num} {street}"))
    for k in range(per_type):
        month, day = rng.randrange(12), rng.randrange(28)
        year = rng.randint(1940, 2005)
        if k % 2:
            said = f"the {_ORD[day]} of {_MONTHS[month]} {_year_words(year)}"
        else:
            said = f"{_MONTHS[month]} {_ORD[day]}, {year}"
        out.append(_fill("DATE_OF_BIRTH", "spoken" if k % 2 else "written", rng, said, str(year)))
    for text in _CONTROLS:
        out.append(Planted("NONE", "control", text, "", _words(text)))
    return out


def _fill(typ: str, form: str, rng: random.Random, said: str, value: str) -> Planted:
    template = rng.choice(_TEMPLATES[typ])
    before, _, after = template.partition("{v}")
    return Planted(
        typ, form, before + said + after, value, _words(before + " " + after),
        (before.strip(), said, after.strip()),
    )  # fmt: skip


def _words(text: str) -> list[str]:
    return [w for w in (_norm_word(t) for t in text.split()) if w]


def _norm_word(t: str) -> str:
    return "".join(c for c in t.lower() if c.isalpha() or c == "'")


# ---------------------------------------------------------------------- audio & recovery


def synthesize(text: str, voice: str, speed: int = 160) -> Audio:
    """espeak-ng speech for `text`, captured from stdout in memory, as float32 16 kHz."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed; it is needed to synthesise PII sentences")
    proc = subprocess.run(  # noqa: S603 - fixed executable, text passed as one argument
        [exe, "-v", voice, "-s", str(speed), "--stdout", text],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return wav_bytes_to_audio(proc.stdout)


_GAP = np.zeros(int(0.1 * SAMPLE_RATE), np.float32)


def _trim(x: Audio, threshold: float = 0.01, keep_s: float = 0.05) -> Audio:
    idx = np.flatnonzero(np.abs(x) > threshold)
    if idx.size == 0:
        return x[:0]
    keep = int(keep_s * SAMPLE_RATE)
    return x[max(0, idx[0] - keep) : idx[-1] + keep]


def synthesize_planted(item: Planted, voice: str) -> tuple[Audio, tuple[float, float] | None]:
    """The sentence as audio, and where the planted value is in it (seconds), if any."""
    audio, extents = synthesize_parts(item, voice)
    return audio, extents.get("value")


def synthesize_parts(item: Planted, voice: str) -> tuple[Audio, dict[str, tuple[float, float]]]:
    """The sentence as audio, and where each of its parts is (seconds): "before", "value",
    "after" for a planted sentence, "all" for a control sentence.

    Before, value and after are synthesised separately and joined with 100 ms pauses, so
    every part's exact extent is known: what a listener can still hear of the value and of
    the ordinary words can then be measured without trusting any ASR.
    """
    before, value, after = item.parts
    if not value:
        audio = synthesize(item.say, voice)
        return audio, {"all": (0.0, len(audio) / SAMPLE_RATE)}
    pieces: list[tuple[str, Audio]] = []
    for role, text in (("before", before), ("value", value), ("after", after)):
        if not text:
            continue
        if pieces:
            pieces.append(("", _GAP))
        pieces.append((role, _trim(synthesize(text, voice))))
    return join_parts(pieces)


def join_parts(pieces: Sequence[tuple[str, Audio]]) -> tuple[Audio, dict[str, tuple[float, float]]]:
    """`pieces` (role, audio) joined, and where each named piece lies (seconds); pieces with
    the role "" (pauses) are not recorded."""
    extents: dict[str, tuple[float, float]] = {}
    pos = 0
    for role, piece in pieces:
        if role:
            extents[role] = (pos / SAMPLE_RATE, (pos + len(piece)) / SAMPLE_RATE)
        pos += len(piece)
    return np.concatenate([p for _, p in pieces]).astype(np.float32), extents


def silenced_share(
    audio: Audio, extent: tuple[float, float], snippets: Sequence[tuple[float, Audio]]
) -> float:
    """Share of the audible input samples in `extent` that a reviewer cannot hear in the
    output: outside every snippet, or silenced in the snippet audio (|y| < 1e-4).

    `snippets`: (start in the input, seconds; the audio the reviewer gets), the snippet
    audio being sample-aligned with the input (the pipeline keeps lengths). Measured on
    the real output, so it counts every redaction the pipeline made, for whatever reason.
    """
    a, b = (int(round(t * SAMPLE_RATE)) for t in extent)
    b = min(b, len(audio))
    seg = np.abs(audio[a:b]) > 0.01
    if not seg.any():
        return 1.0
    silent = np.ones(b - a, bool)
    for start_s, out in snippets:
        s0 = int(round(start_s * SAMPLE_RATE))
        lo, hi = max(a, s0), min(b, s0 + len(out))
        if hi > lo:
            silent[lo - a : hi - a] = np.abs(np.asarray(out[lo - s0 : hi - s0])) < 1e-4
    return float((silent & seg).sum() / seg.sum())


def coverage(
    audio: Audio,
    extent: tuple[float, float],
    spans: Sequence[PiiSpan],
    margin_s: float,
    heard: Sequence[tuple[float, float]] | None = None,
) -> float:
    """Share of the value's audible samples that fall inside span +/- margin, or outside
    every snippet a reviewer hears (`heard`: stretches of the input, None = all of it)."""
    a, b = (int(round(t * SAMPLE_RATE)) for t in extent)
    seg = np.abs(audio[a:b]) > 0.01
    if not seg.any():
        return 1.0
    covered = np.zeros(b - a, bool)
    if heard is not None:
        covered[:] = True
        for h0, h1 in heard:
            lo = max(a, int(h0 * SAMPLE_RATE))
            hi = min(b, int(np.ceil(h1 * SAMPLE_RATE)))
            if hi > lo:
                covered[lo - a : hi - a] = False
    for s in spans:
        lo = max(a, int((s.start_s - margin_s) * SAMPLE_RATE))
        hi = min(b, int(np.ceil((s.end_s + margin_s) * SAMPLE_RATE)))
        if hi > lo:
            covered[lo - a : hi - a] = True
    return float((covered & seg).sum() / seg.sum())


def _speech_s(audio: Audio, extent: tuple[float, float]) -> float:
    """Seconds of audible samples (|x| > 0.01) of `audio` within `extent`."""
    a, b = (int(round(t * SAMPLE_RATE)) for t in extent)
    return float((np.abs(audio[a:b]) > 0.01).sum() / SAMPLE_RATE)


def wav_bytes_to_audio(data: bytes) -> Audio:
    """Decode 16-bit PCM WAV bytes (espeak's streamed header has bogus sizes) to 16 kHz."""
    from scipy.signal import resample_poly

    try:
        with wave.open(io.BytesIO(data)) as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
    except (wave.Error, EOFError) as exc:
        raise ValueError("not a PCM WAV stream") from exc
    pos = data.find(b"data")
    if pos < 0 or width != 2:
        raise ValueError("unsupported WAV stream")
    body = data[pos + 8 :]
    pcm = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        pcm = pcm[: len(pcm) // channels * channels].reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE:
        g = np.gcd(rate, SAMPLE_RATE)
        pcm = resample_poly(pcm, SAMPLE_RATE // g, rate // g).astype(np.float32)
    return np.ascontiguousarray(pcm, dtype=np.float32)


def text_digits(text: str) -> str:
    """All digits said or written in `text`, in order ("five 5-5" -> "555")."""
    cores = [clean(w) for w in text.split()]
    return "".join(r.digits for r in find_number_runs(cores, min_digits=1))


def _longest_common_run(a: str, b: str) -> int:
    if not a or not b:
        return 0
    m = difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return m.size


def _fuzzy_in(word: str, hyp_words: Sequence[str], ratio: float = 0.8) -> bool:
    word = _norm_word(word)
    if not word:
        return False
    return any(
        w == word or difflib.SequenceMatcher(None, w, word).ratio() >= ratio for w in hyp_words
    )


def recovered(item: Planted, text: str) -> tuple[bool, bool]:
    """(fully recovered, partly leaked) for the planted value in an ASR/masked `text`.

    Digits: full = the whole digit string appears; partly = 4+ consecutive digits of it
    (all of it when shorter). Names/e-mails: full = every word of the value appears
    (fuzzy, ratio >= 0.8); partly = any word. Addresses: the street name (full) or the
    house number (partly). Dates of birth: the year.
    """
    if item.type in DIGIT_TYPES:
        digits = text_digits(text)
        full = item.value in digits
        part = _longest_common_run(item.value, digits) >= min(4, len(item.value))
        return full, part or full
    hyp = _words(text)
    if item.type == "DATE_OF_BIRTH":
        full = item.value in text_digits(text)
        return full, full
    if item.type == "ADDRESS":
        num, *street = item.value.split()
        street_ok = _fuzzy_in(street[0], hyp)
        num_ok = num in text_digits(text)
        return street_ok, street_ok or num_ok
    words = item.value.split()
    hits = [
        _fuzzy_in(w, hyp) if not w.isdigit() else w in text_digits(text) for w in words
    ]
    return all(hits), any(hits)


# ---------------------------------------------------------------------- the pipeline path


@dataclass
class PathOutput:
    """What the de-identification path gave for one sentence."""

    audio: Audio  # the snippets' audio, concatenated (what the attacker ASR hears)
    masked: str
    spans: list[PiiSpan]
    heard: list[tuple[float, float]]  # stretches of the input that are in some snippet
    snippets: list[tuple[float, Audio]]  # (start in the input, s; audio), sample-aligned


class _Path:
    """The de-identification path under test: DeidPipeline if present, else ASR+PII+redact."""

    def __init__(self) -> None:
        self.name = "fallback: asr + detect_pii + redact_audio"
        self.margin_s = 0.15  # redact_audio's default margin, used by both paths
        self.anonymises = False
        self._pipeline: Any = None
        try:
            from earshot.pipeline.deid import DeidPipeline

            self._pipeline = DeidPipeline(preload=True)  # stage timings without model loads
            self.name = "earshot.pipeline.deid.DeidPipeline"
            self.anonymises = True
            self.margin_s = float(getattr(self._pipeline, "redact_margin_s", self.margin_s))
        except ImportError:
            self._pipeline = None
        from earshot.pipeline.asr import get_transcriber

        self.asr = get_transcriber()

    def process(self, audio: Audio) -> PathOutput:
        """What a reviewer gets for `audio`: snippets as heard, masked text, PII spans."""
        if self._pipeline is not None:
            result = self._pipeline.process(audio)
            snippets = result if isinstance(result, list | tuple) else [result]
            if not snippets:
                return PathOutput(np.zeros(0, np.float32), "", [], [], [])
            out_audio = np.concatenate([np.asarray(s.audio, np.float32) for s in snippets])
            text = " ".join(s.transcript for s in snippets if s.transcript)
            heard = [(float(s.start_s), float(s.end_s)) for s in snippets]
            pieces = [(float(s.start_s), np.asarray(s.audio, np.float32)) for s in snippets]
            return PathOutput(out_audio, text, [p for s in snippets for p in s.pii], heard, pieces)
        from earshot.pipeline.pii import detect_pii, mask_transcript
        from earshot.pipeline.redact import redact_audio

        tr = self.asr.transcribe(audio)
        spans = detect_pii(tr)
        heard = [(0.0, len(audio) / SAMPLE_RATE)]
        out = redact_audio(audio, spans, margin_s=self.margin_s)
        return PathOutput(out, mask_transcript(tr, spans), spans, heard, [(0.0, out)])

    def second_opinion_calls(self) -> int | None:
        """How many `process` calls asked the second-opinion ASR (None: not this path)."""
        if self._pipeline is None or self._pipeline.second_opinion is None:
            return None
        return int(self._pipeline.timings.stages["second_opinion"].calls)

    def stage_wall_s(self) -> dict[str, float] | None:
        """Wall seconds the de-identification path spent per stage over the run."""
        if self._pipeline is None:
            return None
        return {k: round(v.wall_s, 3) for k, v in self._pipeline.timings.stages.items()}

    def transcript(self, audio: Audio) -> Transcript:
        """The product ASR's unmasked transcript of the original (for precision)."""
        return self.asr.transcribe(audio)


def _progress_fn(progress: Callable[..., None] | None) -> Callable[[str, int, int], None]:
    """Accept both progress(message) and progress(stage, done, total) callbacks."""
    if progress is None:
        return lambda _s, _d, _t: None
    try:
        n = len(inspect.signature(progress).parameters)
    except (TypeError, ValueError):
        n = 3
    if n >= 3:
        return progress
    return lambda s, d, t: progress(f"{s} {d}/{t}")


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


# (voice, planted sentence, its audio if given - real speech - or None to synthesise, extents)
_Job = tuple[str, Planted, Audio | None, dict[str, tuple[float, float]]]


def run_pii_eval(
    work_dir: Path,
    *,
    voices: list[str] | None = None,
    progress: Callable[..., None] | None = None,
    per_type: int = 3,
    seed: int = 0,
    telephone: bool = False,
    digit_bank: DigitBank | None = None,
    real_per_speaker: int = 8,
) -> dict[str, object]:
    """Synthesise planted-PII sentences, de-identify them, and measure what an ASR recovers.

    `telephone`: every sentence goes through an 8 kHz channel before the pipeline hears it.
    `digit_bank`: also plant `real_per_speaker` numbers said by each of its real speakers
    (`evaluation.real_digits`); summarised apart under "real_digits".

    Writes `pii_eval.json` (summary and per-sentence rows, synthetic values only) into
    `work_dir` and returns the summary (JSON-serialisable).
    """
    from earshot.evaluation.asr import WhisperJudge
    from earshot.pipeline.pii import detect_pii
    from earshot.pipeline.redact import redact_audio, untranscribed_spans

    report_progress = _progress_fn(progress)
    voices = voices or list(DEFAULT_VOICES)
    if shutil.which("espeak-ng") is None:
        # the rest of an `earshot eval` report is still worth writing
        return {"skipped": "espeak-ng is not installed; it synthesises the PII sentences"}
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    path = _Path()
    judge = WhisperJudge()
    rows: list[dict[str, Any]] = []
    jobs: list[_Job] = [
        (voice, item, None, {})
        for v_i, voice in enumerate(voices)
        for item in build_sentences(random.Random(seed * 1000 + v_i), per_type)
    ]
    if digit_bank is not None:
        jobs += _real_digit_jobs(digit_bank, random.Random(seed * 1000 + 999), real_per_speaker)
    audio_s = 0.0
    real_rows: list[dict[str, Any]] = []
    for n, (voice, item, given, given_extents) in enumerate(jobs):
        report_progress("PII sentences", n, len(jobs))
        if given is None:
            audio, extents = synthesize_parts(item, voice)
        else:
            audio, extents = given, given_extents
        if telephone:
            audio = telephone_band(audio)
        extent = extents.get("value")
        audio_s += len(audio) / SAMPLE_RATE
        got = path.process(audio)
        out_audio, masked, spans, heard = got.audio, got.masked, got.spans, got.heard
        hyp_orig = judge.transcribe(audio)
        hyp_out = judge.transcribe(out_audio) if len(out_audio) else ""
        transcript = path.transcript(audio)
        own_spans = detect_pii(transcript)
        if path.anonymises:  # the bleeps alone, to tell them apart from the voice change
            hyp_red = judge.transcribe(redact_audio(audio, spans, margin_s=path.margin_s))
        else:
            hyp_red = hyp_out
        row = _row(voice, item, hyp_orig, hyp_out, masked, transcript, own_spans, spans)
        red_full = recovered(item, hyp_red)[0] if item.type != "NONE" else False
        ref = Counter(item.other_words)
        row["hyp_redacted_only"] = hyp_red
        row["asr_words"] = [[w.text, round(float(w.probability), 2)] for w in transcript.words]
        row["redacted_only_full"] = red_full
        row["other_heard_redacted_only"] = sum(
            (ref & Counter(_words(hyp_orig)) & Counter(_words(hyp_red))).values()
        )
        row["coverage"] = (
            round(coverage(audio, extent, spans, path.margin_s, heard), 4) if extent else None
        )
        # what redacting untranscribed stretches too would add (see redact.untranscribed_spans)
        gaps = untranscribed_spans(transcript.words, len(audio) / SAMPLE_RATE, audio=audio)
        row["coverage_with_untranscribed"] = (
            round(coverage(audio, extent, [*spans, *gaps], path.margin_s, heard), 4)
            if extent
            else None
        )
        # measured on the real output: what a human listener can no longer hear of the value,
        # and can still hear of the ordinary words (seconds of speech, audible samples)
        row["value_silenced"] = (
            round(silenced_share(audio, extent, got.snippets), 4) if extent else None
        )
        other = [e for role, e in extents.items() if role != "value"]
        other_s = [_speech_s(audio, e) for e in other]
        row["other_speech_s"] = round(sum(other_s), 3)
        row["other_speech_audible_s"] = round(
            sum(
                s * (1.0 - silenced_share(audio, e, got.snippets))
                for s, e in zip(other_s, other, strict=True)
            ),
            3,
        )
        row["untranscribed_s"] = round(sum(g.end_s - g.start_s for g in gaps), 3)
        row["audio_s"] = round(len(audio) / SAMPLE_RATE, 3)
        (rows if given is None else real_rows).append(row)
    report_progress("PII sentences", len(jobs), len(jobs))

    summary = summarise(rows)
    if digit_bank is not None:
        summary["real_digits"] = summarise_real_digits(real_rows)
        summary["verdicts"]["real_digits_recall"] = summary["real_digits"]["pass"]
        summary["pass"] = bool(summary["pass"]) and bool(summary["real_digits"]["pass"])
    summary.update(
        {
            "path": path.name,
            # recordings (sentences) the pipeline asked Whisper base about (pipeline.second_opinion)
            "second_opinion_asked": path.second_opinion_calls(),
            "pipeline_stage_wall_s": path.stage_wall_s(),
            "attacker_asr": "faster-whisper tiny.en (int8, greedy), evaluation.asr.WhisperJudge",
            "voices": voices,
            "sentences": len(rows),
            "audio_s": round(audio_s, 1),
            "elapsed_s": round(time.perf_counter() - t_start, 1),
            "seed": seed,
            "sentences_per_type": per_type,
        }
    )
    (work_dir / "pii_eval.json").write_text(
        json.dumps({"summary": summary, "rows": rows, "real_digit_rows": real_rows}, indent=1)
    )
    return summary


def _real_digit_jobs(
    bank: DigitBank, rng: random.Random, per_speaker: int
) -> list[_Job]:
    """Numbers said by the bank's real speakers, alone or inside an espeak carrier sentence."""
    from earshot.evaluation.real_digits import build_items

    def carrier(typ: str) -> tuple[str, str, Audio, Audio]:
        before, _, after = rng.choice(_TEMPLATES[typ]).partition("{v}")
        before, after = before.strip(), after.strip(" .")
        empty = np.zeros(0, np.float32)
        return (before, after, _trim(synthesize(before, DEFAULT_VOICES[0])) if before else empty,
                _trim(synthesize(after, DEFAULT_VOICES[0])) if after else empty)  # fmt: skip

    out: list[_Job] = []
    for it in build_items(bank, rng, per_speaker=per_speaker, carrier=carrier):
        before, _, after = it.parts
        planted = Planted(it.type, it.form, " ".join(p for p in it.parts if p), it.value,
                          _words(before + " " + after), it.parts)  # fmt: skip
        out.append((it.voice, planted, it.audio, dict(it.extents)))
    return out


def summarise_real_digits(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The digit-run figures of numbers said by real people, overall and per form; `pass` by
    the same rule as the synthetic digit runs (listener, attacker ASR and transcript)."""
    overall = summarise(rows)["groups"]["digits"] if rows else {"planted": 0}
    by_form = {
        form: summarise([r for r in rows if r["form"] == form])["groups"]["digits"]
        for form in sorted({r["form"] for r in rows})
    }
    ok = bool(rows) and group_passes(overall, TARGETS["digits_recall_min"])
    return {
        "numbers": len(rows),
        "speakers": sorted({r["voice"] for r in rows}),
        **overall,
        "by_form": by_form,
        "pass": ok,
    }


def _row(
    voice: str,
    item: Planted,
    hyp_orig: str,
    hyp_out: str,
    masked: str,
    transcript: Transcript,
    own_spans: list[PiiSpan],
    path_spans: list[PiiSpan],
) -> dict[str, Any]:
    orig_full, orig_part = recovered(item, hyp_orig) if item.type != "NONE" else (False, False)
    out_full, out_part = recovered(item, hyp_out) if item.type != "NONE" else (False, False)
    txt_full, txt_part = recovered(item, masked) if item.type != "NONE" else (False, False)
    ref = Counter(item.other_words)
    orig_words = Counter(_words(hyp_orig))
    heard = ref & orig_words  # ordinary words ASR gets from the original
    still_heard = heard & Counter(_words(hyp_out))
    unmasked = Counter(_words(transcript.text))
    in_text = ref & unmasked
    still_text = in_text & Counter(_words(masked))
    # precision of detect_pii on the product ASR's transcript: masked words that are
    # ordinary words of the sentence (or anything, in a control sentence)
    value_words = Counter(_words(item.value))
    masked_words = 0
    false_words = 0
    budget = Counter(ref)
    for s in own_spans:
        for w in transcript.words[s.first_word : s.last_word + 1]:
            masked_words += 1
            nw = _norm_word(w.text)
            if item.type == "NONE":
                false_words += 1
            elif nw and budget[nw] > 0 and value_words[nw] == 0:
                budget[nw] -= 1
                false_words += 1
    return {
        "voice": voice,
        "type": item.type,
        "form": item.form,
        "value": item.value,
        "said": item.say,
        "hyp_original": hyp_orig,
        "hyp_deid": hyp_out,
        "masked": masked,
        "detected": [s.type for s in path_spans],
        "orig_full": orig_full,
        "orig_part": orig_part,
        "audio_full": out_full,
        "audio_part": out_part,
        "text_full": txt_full,
        "text_part": txt_part,
        "other_ref": sum(ref.values()),
        "other_heard_orig": sum(heard.values()),
        "other_heard_deid": sum(still_heard.values()),
        "other_in_asr": sum(in_text.values()),
        "other_in_masked": sum(still_text.values()),
        "masked_words": masked_words,
        "false_masked_words": false_words,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, object]:
    """Per-type recall (audio, transcript), precision and retained ordinary words."""
    per_type: dict[str, dict[str, object]] = {}
    types = sorted({r["type"] for r in rows if r["type"] != "NONE"})
    for typ in types:
        rs = [r for r in rows if r["type"] == typ]
        ok = [r for r in rs if r["orig_full"]]
        per_type[typ] = {
            "planted": len(rs),
            "recoverable_in_original": len(ok),
            # primary: among values the attacker gets from the original audio
            "audio_recall": _ratio(sum(not r["audio_full"] for r in ok), len(ok)),
            "audio_recall_partial": _ratio(sum(not r["audio_part"] for r in ok), len(ok)),
            "text_recall": _ratio(sum(not r["text_full"] for r in ok), len(ok)),
            "text_recall_partial": _ratio(sum(not r["text_part"] for r in ok), len(ok)),
            # over every planted value
            "audio_recovered_share_all": _ratio(sum(r["audio_full"] for r in rs), len(rs)),
            "text_recovered_share_all": _ratio(sum(r["text_full"] for r in rs), len(rs)),
            # attacker-independent: share of values whose speech is >= 90 % bleeped
            "speech_covered_share": _ratio(sum(r["coverage"] >= 0.9 for r in rs), len(rs)),
            "speech_covered_share_with_untranscribed": _ratio(
                sum((r.get("coverage_with_untranscribed") or 0) >= 0.9 for r in rs), len(rs)
            ),
            "speech_coverage_mean": _ratio(sum(r["coverage"] for r in rs), len(rs)),
            "listener_recall": _listener_recall(rs),
            "by_form": {
                form: _ratio(
                    sum(not r["audio_full"] for r in ok if r["form"] == form),
                    sum(1 for r in ok if r["form"] == form),
                )
                for form in sorted({r["form"] for r in rs})
            },
        }

    def group(names: Sequence[str]) -> dict[str, object]:
        rs = [r for r in rows if r["type"] in names]
        ok = [r for r in rs if r["orig_full"]]
        return {
            "planted": len(rs),
            "recoverable": len(ok),
            "speech_covered_share": _ratio(sum(r["coverage"] >= 0.9 for r in rs), len(rs)),
            "speech_covered_share_with_untranscribed": _ratio(
                sum((r.get("coverage_with_untranscribed") or 0) >= 0.9 for r in rs), len(rs)
            ),
            "listener_recall": _listener_recall(rs),
            "listener_recall_ci95": _listener_interval(rs),
            "audio_recall": _ratio(sum(not r["audio_full"] for r in ok), len(ok)),
            "text_recall": _ratio(sum(not r["text_full"] for r in ok), len(ok)),
            "text_recall_all": _ratio(sum(not r["text_full"] for r in rs), len(rs)),
            "audio_recall_redaction_only": _ratio(
                sum(not r.get("redacted_only_full", r["audio_full"]) for r in ok), len(ok)
            ),
            "audio_recall_partial": _ratio(sum(not r["audio_part"] for r in ok), len(ok)),
            "text_recall_partial": _ratio(sum(not r["text_part"] for r in ok), len(ok)),
        }

    masked = sum(r["masked_words"] for r in rows)
    false = sum(r["false_masked_words"] for r in rows)
    controls = [r for r in rows if r["type"] == "NONE"]
    groups = {
        "digits": group(DIGIT_TYPES),
        "email": group(["EMAIL"]),
        "name": group(["NAME"]),
        "address": group(["ADDRESS"]),
        "date_of_birth": group(["DATE_OF_BIRTH"]),
    }
    kept_audio = _ratio(
        sum(r["other_heard_deid"] for r in rows), sum(r["other_heard_orig"] for r in rows)
    )
    kept_text = _ratio(sum(r["other_in_masked"] for r in rows), sum(r["other_in_asr"] for r in rows))
    speech_audible = _ratio(
        sum(r.get("other_speech_audible_s", 0.0) for r in rows),
        sum(r.get("other_speech_s", 0.0) for r in rows),
    )
    summary: dict[str, object] = {
        "groups": groups,
        "per_type": per_type,
        "precision_words": _ratio(masked - false, masked),
        "false_masked_words": false,
        "masked_words": masked,
        "control_sentences": len(controls),
        "control_sentences_with_detection": sum(1 for r in controls if r["masked_words"]),
        # ordinary words' speech a listener still hears (not silenced, in a snippet)
        "non_pii_speech_audible": speech_audible,
        # ordinary words an ASR still recognises after de-identification (intelligibility)
        "non_pii_kept_audio": kept_audio,
        "untranscribed_share_of_audio": _ratio(
            sum(r.get("untranscribed_s", 0.0) for r in rows), sum(r.get("audio_s", 0.0) for r in rows)
        ),
        "non_pii_kept_audio_redaction_only": _ratio(
            sum(r.get("other_heard_redacted_only", r["other_heard_deid"]) for r in rows),
            sum(r["other_heard_orig"] for r in rows),
        ),
        "non_pii_kept_text": kept_text,
        "non_pii_kept_audio_vs_reference": _ratio(
            sum(r["other_heard_deid"] for r in rows), sum(r["other_ref"] for r in rows)
        ),
        "non_pii_kept_text_vs_reference": _ratio(
            sum(r["other_in_masked"] for r in rows), sum(r["other_ref"] for r in rows)
        ),
        "targets": TARGETS,
    }
    summary["verdicts"] = verdicts(groups, speech_audible, kept_text, kept_audio)
    summary["pass"] = all(v for k, v in summary["verdicts"].items() if k != "non_pii_asr_kept")
    return summary


def verdicts(
    groups: dict[str, Any],
    speech_audible: float | None,
    kept_text: float | None,
    kept_audio: float | None,
) -> dict[str, bool]:
    """Pass/fail per target. A PII group passes when a listener can no longer hear its
    values (>= 90 % of each value's speech silenced), the attacker ASR recovers no more
    than allowed from the audio (among values it gets from the original; no such value:
    nothing to fail) and the masked transcript shows no more than allowed.
    `non_pii_asr_kept` (ordinary words an ASR still recognises after the voice change)
    is reported but is not part of the overall pass: the WER figure measures that on real
    speech, where synthetic speech exaggerates it."""

    out: dict[str, bool] = {}
    for group, target in (("digits", "digits_recall_min"), ("email", "email_recall_min"),
                          ("name", "name_recall_min")):  # fmt: skip
        out[f"{group}_recall"] = group_passes(groups[group], TARGETS[target])
    out["non_pii_audible"] = _ge(speech_audible, TARGETS["non_pii_kept_min"])
    out["non_pii_in_transcript"] = _ge(kept_text, TARGETS["non_pii_kept_min"])
    out["non_pii_asr_kept"] = _ge(kept_audio, TARGETS["non_pii_kept_min"])
    return out


def group_passes(g: dict[str, Any], target: float) -> bool:
    """A PII group's rule: listener and masked-transcript recall at least `target`, and the
    attacker ASR's too where it recovered any value from the original."""
    return (
        _ge(g.get("listener_recall"), target)
        and _ge(g.get("audio_recall"), target, none_ok=True)
        and _ge(g.get("text_recall_all"), target)
    )


def _ge(v: object, t: float, *, none_ok: bool = False) -> bool:
    if v is None:
        return none_ok
    return isinstance(v, float | int) and v >= t


def _listener_counts(rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """(values whose speech is >= 90 % silenced or outside every snippet, values measured)."""
    vals = [r["value_silenced"] for r in rows if r.get("value_silenced") is not None]
    return sum(v >= 0.9 for v in vals), len(vals)


def _listener_recall(rows: Sequence[dict[str, Any]]) -> float | None:
    """Share of planted values whose speech is >= 90 % silenced or outside every snippet."""
    return _ratio(*_listener_counts(rows))


def _listener_interval(rows: Sequence[dict[str, Any]]) -> list[float] | None:
    """95 % Wilson interval of `_listener_recall`: how far it could move on as many other values."""
    from earshot.evaluation.metrics import wilson_interval

    interval = wilson_interval(*_listener_counts(rows))
    return None if interval is None else [round(v, 4) for v in interval]


def planted_as_dict(item: Planted) -> dict[str, Any]:
    """A planted sentence as plain data (for tests and debugging)."""
    return asdict(item)
