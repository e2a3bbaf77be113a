"""Personal data in transcripts: typed spans over ASR words, and masking of the text.

Detection works on the words (so every span maps back to word timings) in three layers:

1. spoken-form normalisation (`pii_spoken`): digit runs said as words or digits, possibly
   split over several words, and e-mail addresses said aloud;
2. Earshot's own rules for the context of each value (card, sort code, PIN, passport, date
   of birth, street address via `usaddress`, person names via cues and a gazetteer);
3. Presidio's pattern/checksum recognizers (`pii_presidio`, fully offline) over the
   normalised text, as a second opinion that can only add spans - run where measurement
   showed it adds something (letter+digit codes such as IBANs), see `_presidio_wanted`.

After detection, "<cue> is <value>" phrases ("my pin is ...", "my email is ...") mask what
follows even when the ASR garbled it, and span times are widened where the word aligner
obviously misplaced speech (see `_span_times`).

Any run of three or more digits is masked whatever its context: the type only says what
it most likely is. Nothing here logs or raises with transcript content.
"""

from __future__ import annotations

import itertools
import operator
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from earshot.pipeline.pii_names import (
    FUNCTION_WORDS,
    UNSURE_NAME_CUES,
    find_caller_names,
    find_garbled_names,
    find_names,
    gazetteer,
)
from earshot.pipeline.pii_spoken import (
    EMAIL_CUES,
    HOMOPHONES,
    REPEATS,
    TEENS,
    TENS,
    UNITS,
    WEAK_ZERO,
    EmailMatch,
    NumberRun,
    PhraseIndex,
    address_ending,
    clean,
    email_cue_before,
    find_emails,
    find_emails_by_ending,
    find_number_runs,
    find_spoken_email_soup,
    find_web_addresses,
    is_number_word,
    luhn_ok,
    sure_sentence_end,
    written_digits,
)
from earshot.pipeline.types import PiiSpan, Transcript, Word

PII_TYPES = (
    "EMAIL", "CARD", "SSN", "PASSPORT", "SORT_CODE", "PIN", "CODE", "PHONE", "ACCOUNT",
    "DATE_OF_BIRTH", "ADDRESS", "NAME", "NUMBER",
)  # fmt: skip
# When spans overlap they are merged and the earlier type in this order wins.
_PRIORITY = {t: i for i, t in enumerate(PII_TYPES)}

# (cue words, type); a cue is matched as a phrase ending within the window before a number.
_NUMBER_CUES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("passport",), "PASSPORT"),
    (("social", "security"), "SSN"), (("ssn",), "SSN"), (("national", "insurance"), "SSN"),
    (("sort", "code"), "SORT_CODE"), (("sort",), "SORT_CODE"), (("shortcode",), "SORT_CODE"),
    (("short", "code"), "SORT_CODE"),
    (("zip", "code"), "ADDRESS"), (("zip",), "ADDRESS"), (("postcode",), "ADDRESS"),
    (("post", "code"), "ADDRESS"), (("postal", "code"), "ADDRESS"),
    (("area", "code"), "PHONE"),
    (("pin",), "PIN"), (("pin", "number"), "PIN"),
    (("opinion",), "PIN"),  # "my pin is" through a telephone line ("My opinion, 6 free double ...")
    (("card",), "CARD"), (("credit",), "CARD"), (("debit",), "CARD"), (("visa",), "CARD"),
    (("mastercard",), "CARD"), (("amex",), "CARD"),
    (("cvv",), "CODE"), (("cvc",), "CODE"), (("code",), "CODE"), (("passcode",), "CODE"),
    (("verification",), "CODE"), (("otp",), "CODE"), (("password",), "CODE"),
    (("security",), "CODE"), (("confirmation",), "CODE"),
    (("account",), "ACCOUNT"), (("acct",), "ACCOUNT"), (("iban",), "ACCOUNT"),
    (("routing",), "ACCOUNT"), (("member",), "ACCOUNT"), (("membership",), "ACCOUNT"),
    (("customer",), "ACCOUNT"), (("policy",), "ACCOUNT"), (("reference",), "ACCOUNT"),
    (("order",), "ACCOUNT"), (("booking",), "ACCOUNT"), (("claim",), "ACCOUNT"),
    (("invoice",), "ACCOUNT"), (("ticket",), "ACCOUNT"), (("licence",), "ACCOUNT"),
    (("license",), "ACCOUNT"), (("id",), "ACCOUNT"), (("tracking",), "ACCOUNT"),
    (("born",), "DATE_OF_BIRTH"), (("birth",), "DATE_OF_BIRTH"),
    (("birthday",), "DATE_OF_BIRTH"), (("dob",), "DATE_OF_BIRTH"),
)  # fmt: skip
_NUMBER_INDEX = PhraseIndex([cue for cue, _typ in _NUMBER_CUES])
_NUMBER_CUE_TYPES = dict(_NUMBER_CUES)
_PHONE_CUES = frozenset(
    "phone telephone mobile cell cellphone landline call ring reach text dial extension "
    "fax whatsapp number contact callback".split()
)
_CUE_WINDOW = 8
_CUE_WORDS = frozenset(cue[0] for cue, _typ in _NUMBER_CUES if len(cue) == 1) | _PHONE_CUES

_SSN_WRITTEN = re.compile(r"\d{3}-\d{2}-\d{4}")
_SORT_WRITTEN = re.compile(r"\d{2}-\d{2}-\d{2}")
_PHONE_WRITTEN = re.compile(r"(\+\d{1,3}[ \-.]?)?(\(?\d{3}\)?[ \-.]?)?\d{3}[ \-.]\d{4}")

MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_ORDINAL_WORDS = frozenset(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth "
    "thirtieth".split()
)
_DOB_CUES: tuple[tuple[str, ...], ...] = (
    ("born",), ("birth",), ("birth", "date"), ("birthdate",), ("birthday",),
    ("dob",), ("d.o.b",), ("d.o.b.",),
)  # fmt: skip
_DOB_INDEX = PhraseIndex(_DOB_CUES)
_DOB_FILLERS = frozenset("on is was in the of it's its my a an at : - was".split())

STREET_SUFFIXES = frozenset(
    "street st road rd avenue ave lane ln drive dr boulevard blvd way court ct place pl close "
    "crescent terrace square sq parkway pkwy highway hwy circle cir row gardens grove mews "
    "walk trail alley plaza parade wharf rise".split()
)
_DIRECTIONS = frozenset("n s e w ne nw se sw north south east west".split())
_UNIT_WORDS = frozenset("apartment apt unit suite flat floor #".split())
_ADDRESS_CUES: tuple[tuple[str, ...], ...] = (
    ("my", "address", "is"), ("address", "is"), ("i", "live", "at"), ("i", "live", "on"),
    ("live", "at"), ("lives", "at"), ("living", "at"), ("we", "live", "at"), ("moved", "to"),
    ("deliver", "to"), ("delivered", "to"), ("send", "it", "to"), ("ship", "to"),
    ("deliver", "it", "to"), ("house", "is", "at"), ("flat", "is", "at"), ("we're", "at"),
    ("i'm", "at"), ("postcode", "is"), ("zip", "code", "is"),
    ("address's",), ("located", "at"),
)  # fmt: skip
_ADDRESS_INDEX = PhraseIndex(_ADDRESS_CUES)
_ADDRESS_LABELS = frozenset(
    {"StreetNamePostDirectional", "OccupancyType", "OccupancyIdentifier", "PlaceName",
     "StateName", "ZipCode", "SubaddressType", "SubaddressIdentifier"}
)  # fmt: skip
_UK_POSTCODE = re.compile(r"[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}")


@dataclass(frozen=True)
class _Cand:
    first: int
    last: int
    type: str


_MIXED_TOKEN = re.compile(r"(?=[A-Za-z0-9]*[A-Za-z])(?=[A-Za-z0-9]*\d)[A-Za-z0-9]{4,}")
_COMMON_MIXED = re.compile(r"\d+(?:st|nd|rd|th|s|am|pm|k|m|ml|kg|km|mph|g|gb|mb|p)", re.IGNORECASE)


def _presidio_wanted(cores: list[str], use_presidio: bool | None) -> bool:
    """Whether to run Presidio on this transcript.

    True/False force it. None follows EARSHOT_PII_PRESIDIO: "1" always, "0" never, "auto"
    (default) only when a written token mixes letters and digits ("GB82", "QQ123456C"): the
    one thing our measurements found Presidio adding (IBAN and similar checksummed codes),
    so the ~3 s it takes to import spaCy and build the engine is only paid when it can help.
    """
    if use_presidio is not None:
        return use_presidio
    mode = os.environ.get("EARSHOT_PII_PRESIDIO", "auto").strip().lower()
    if mode in ("0", "false", "no", "off"):
        return False
    if mode in ("1", "true", "yes", "on"):
        return True
    return any(_MIXED_TOKEN.fullmatch(c) and not _COMMON_MIXED.fullmatch(c) for c in cores)


def detect_pii(transcript: Transcript, *, use_presidio: bool | None = None) -> list[PiiSpan]:
    """Typed personal-data spans over `transcript.words`, in word order, never overlapping.

    first_word/last_word are inclusive word indices; start_s/end_s come from those words'
    timings, widened into a neighbouring word whose timing is implausibly long (see
    `_span_times`). `use_presidio`: see `_presidio_wanted` (default: when it can help).
    """
    words = transcript.words
    if not words:
        return []
    cores = [clean(w.text) for w in words]
    lows = [c.lower() for c in cores]
    raw = [w.text for w in words]
    probs = [float(w.probability) for w in words]
    starts = _sentence_starts(raw)
    cands: list[_Cand] = []

    emails = _dedupe_emails(
        find_emails(cores, _is_suffix)
        + find_web_addresses(cores, _is_suffix)
        + find_spoken_email_soup(cores, raw, probs)
        + find_emails_by_ending(cores, raw, probs)
    )
    cands += [_Cand(m.first, m.last, "EMAIL") for m in emails]
    in_email = {i for m in emails for i in range(m.first, m.last + 1)}

    runs = [
        r
        for r in find_number_runs(cores)
        if not any(i in in_email for i in range(r.first, r.last + 1))
    ]
    runs = [r for r in runs if not _is_clock_time(r, lows)]
    for run in runs:
        cands.append(_widen_date(_classify_run(run, cores, lows), cores, lows))

    cands += _dates_of_birth(cores, lows)
    cands += _addresses(words_text=raw, cores=cores, lows=lows)
    cands += [_Cand(a, b, "NAME") for a, b in find_names(cores, starts) if a not in in_email]
    taken = {i for c in cands for i in range(c.first, c.last + 1)}
    cands += [
        _Cand(a, b, "NAME")
        for a, b in [
            *find_garbled_names(cores, probs, raw),
            *find_caller_names(cores, probs, raw),
        ]
        if a not in taken
    ]
    cands += _uk_postcodes(cores)
    cands += _cued_values(words, cores, lows, [c.first for c in cands])
    found = {i for c in cands for i in range(c.first, c.last + 1)}
    cands += _cued_digit_soup(words, cores, lows, probs, found)

    if _presidio_wanted(cores, use_presidio):
        cands += _presidio_cands(cores, lows, runs, emails)

    found = {i for c in cands for i in range(c.first, c.last + 1)}
    soup = _uncued_digit_soup(cores, lows, probs, found)  # reaches over its gaps; not grown
    grown = _reach_stray_digits(_absorb_unsure(_merge(cands), words), words, cores, lows)
    merged = _back_to_cue(_through_loops(_merge([*grown, *soup]), lows), words, cores, lows)
    merged = _on_to_address_ending(merged, words, lows)
    out = []
    for c in merged:
        start, end = _span_times(words, c.first, c.last)
        out.append(PiiSpan(c.type, start, end, c.first, c.last))
    return out


# "<cue> is <value>": what follows is the value even when the ASR garbled it.
_VALUE_CUES: tuple[tuple[tuple[str, ...], str, bool], ...] = (
    # (cue words, type, needs a number-like or low-confidence word in the value)
    (("email", "is"), "EMAIL", False), (("email", "address", "is"), "EMAIL", False),
    (("e-mail", "is"), "EMAIL", False), (("email's",), "EMAIL", False),
    (("pin", "is"), "PIN", True), (("pin", "was"), "PIN", True),
    (("pin", "number", "is"), "PIN", True), (("pin", "number", "was"), "PIN", True),
    (("code", "is"), "CODE", True), (("card", "number", "is"), "CARD", True),
    (("account", "number", "is"), "ACCOUNT", True), (("sort", "code", "is"), "SORT_CODE", True),
    (("phone", "number", "is"), "PHONE", True), (("mobile", "number", "is"), "PHONE", True),
    (("my", "number", "is"), "PHONE", True), (("passport", "number", "is"), "PASSPORT", True),
    (("security", "number", "is"), "SSN", True),
)  # fmt: skip
_VALUE_STOP = frozenset(
    "and but so please thanks thank if because when then or".split()
)
_VALUE_TYPES = {cue: (typ, needs) for cue, typ, needs in _VALUE_CUES}
_VALUE_INDEX = PhraseIndex(_VALUE_TYPES)
_LOW_CONFIDENCE = 0.5
# first words that say the sentence is about the value, not the value itself
_NOT_A_VALUE = frozenset(
    "the a an not on at same still wrong correct different also just this that what my "
    "your his her their our too very no none there here it changed expired blocked "
    "locked working".split()
)


def _cued_values(words: list, cores: list[str], lows: list[str], taken: list[int]) -> list[_Cand]:
    """The words after "my pin is", "my email is", ... up to the end of the sentence (at most
    eight), when no other detector already starts a span right there."""
    out: list[_Cand] = []
    n = len(lows)
    taken_set = set(taken)
    for end in range(n - 1):
        for cue in _VALUE_INDEX.ending_at(lows, end)[:1]:
            typ, needs_number = _VALUE_TYPES[cue]
            first = end + 1
            if first in taken_set or first + 1 in taken_set or lows[first] in _NOT_A_VALUE:
                continue
            last = first - 1
            j = first
            while j < n and j < first + 8 and lows[j] not in _VALUE_STOP:
                last = j
                if ends_sentence(words[j]) and not _value_goes_on(
                    words, cores, lows, j + 1
                ):
                    break
                j += 1
            if last < first:
                continue
            if needs_number:
                ok = any(
                    _number_like(cores, lows, x) or float(words[x].probability) < _LOW_CONFIDENCE
                    for x in range(first, last + 1)
                )
                if not ok:
                    continue
            out.append(_Cand(first, last, typ))
    return out


_SOUP_WINDOW = 10  # words after a number cue that may hold a misheard value
_SOUP_MIN_DIGITS = 3
_SOUP_MEAN_PROB = 0.6  # the ASR's mean word probability over them must be under this
# between the cue and the value ("in": "is" through a telephone line)
_SOUP_LINKS = frozenset("is was are it's its number in".split())


def _soup_digits(core: str, low: str) -> int:
    """Digits a word may say inside a misheard number: a written number's digits ("6th" one,
    "1948" four), one for a number word, a digit homophone ("to", "for"), "oh" or "double";
    of a word the ASR glued with hyphens, those its parts say ("5-level", "high-five")."""
    digits = written_digits(core)
    if digits is not None:
        return len(digits)
    if is_number_word(low) or low in HOMOPHONES or low in REPEATS:  # number words include "oh"
        return 1
    if "-" in low:
        parts = [(c, c.lower()) for c in core.split("-") if c]
        return sum(_soup_digits(c, lw) for c, lw in parts) if len(parts) > 1 else 0
    return 1 if low in _ORDINAL_WORDS else 0


def digits_said(words: list[Word], first: int, last: int) -> int:
    """How many digits words[first..last] may say, counted as `_cued_digit_soup` counts them."""
    return sum(_soup_digits(core, core.lower()) for core in (clean(w.text) for w in words[first : last + 1]))


def number_like(text: str) -> bool:
    """The word (raw or cleaned) holds digits or is a spoken number word."""
    core = clean(text)
    return written_digits(core) is not None or is_number_word(core.lower())


def _number_cue_at(lows: list[str], end: int) -> str | None:
    """The type of the number or phone cue that ends at word `end` ("sort code" -> SORT_CODE,
    "text" -> PHONE), or None."""
    cues = _NUMBER_INDEX.ending_at(lows, end)
    if cues:
        return _NUMBER_CUE_TYPES[cues[0]]
    return "PHONE" if lows[end] in _PHONE_CUES else None


def _cued_digit_soup(
    words: list, cores: list[str], lows: list[str], probs: list[float], taken: set[int]
) -> list[_Cand]:
    """A number the ASR broke up with misheard words right after a number cue ("the code in
    6th and 1 nearo 4th and 1 8th" for "the code is six seven zero four, seven eight", typical
    of telephone-band speech), where no other detector found anything: from the first
    digit-like or unsure word after the cue to the last digit-like word within ten, when those
    say at least three digits and the ASR was unsure of them on average (a confident sentence
    with a few numbers in it is ordinary speech)."""
    out: list[_Cand] = []
    n = len(lows)
    for end in range(n - 1):
        typ = _number_cue_at(lows, end)
        if typ is None or typ in ("ADDRESS", "DATE_OF_BIRTH"):
            continue
        if ends_sentence(words[end]) and not _value_goes_on(words, cores, lows, end + 1):
            continue
        first, last, digits = -1, -1, 0
        for j in range(end + 1, min(n, end + 1 + _SOUP_WINDOW)):
            d = _soup_digits(cores[j], lows[j])
            if first < 0 and (d or (probs[j] < _SOUP_MEAN_PROB and lows[j] not in _SOUP_LINKS)):
                first = j  # the value starts at its first digit-like or unsure word
            if d:
                last, digits = j, digits + d
            if ends_sentence(words[j]) and not _value_goes_on(words, cores, lows, j + 1):
                break
        if first < 0 or last < first or digits < _SOUP_MIN_DIGITS:
            continue
        if any(i in taken for i in range(first, last + 1)):
            continue  # a number already found there: the soup is for numbers nothing found
        if sum(probs[first : last + 1]) / (last + 1 - first) < _SOUP_MEAN_PROB:
            out.append(_Cand(first, last, typ))
    return out


_LOOSE_GAP = 2  # other words a misheard number may hold between two digit-like words
_LOOSE_MIN_WORDS = 3  # digit-like words: "10 30" (a clock time) is not a misheard number
_LOOSE_MIN_DIGITS = 4
_LOOSE_MIN_NUMBERS = 2  # ... of which written numbers or number words, not only sound-alikes
# what a telephone line makes of "nine" and "five" among digits (besides the homophones)
_DIGIT_ALIKES = frozenset({"i'm", "time", "times", "fine"})


def _uncued_digit_soup(cores: list[str], lows: list[str], probs: list[float], taken: set[int]) -> list[_Cand]:
    """A number broken up by misheard words with no cue left to show it ("My goodness, 8
    times 6 times" for "My pin is eight five six five"; telephone-band speech, where the cue
    itself is misheard): digit-like words at most two other words apart, together saying at
    least four digits, of which at least two are written numbers or number words, where the
    ASR was unsure of the stretch on average and nothing else was found. Stricter than
    `_cued_digit_soup`, which a cue vouches for."""

    def digits_of(i: int) -> int:
        return _soup_digits(cores[i], lows[i]) or int(lows[i] in _DIGIT_ALIKES)

    def a_number(i: int) -> bool:
        return number_like(cores[i]) and lows[i] not in WEAK_ZERO

    out: list[_Cand] = []
    n = len(lows)
    i = 0
    while i < n:
        if i in taken or not digits_of(i):
            i += 1
            continue
        first = last = i
        count, digits, numbers, gap = 1, digits_of(i), int(a_number(i)), 0
        for j in range(i + 1, n):
            if j in taken:
                break
            if d := digits_of(j):
                last, count, digits, gap = j, count + 1, digits + d, 0
                numbers += a_number(j)
            else:
                gap += 1
                if gap > _LOOSE_GAP:
                    break
        if (
            count >= _LOOSE_MIN_WORDS and digits >= _LOOSE_MIN_DIGITS and numbers >= _LOOSE_MIN_NUMBERS
            and sum(probs[first : last + 1]) / (last + 1 - first) < _SOUP_MEAN_PROB
        ):  # fmt: skip
            out.append(_Cand(first, last, "NUMBER"))
        i = last + 1
    return out


def _value_goes_on(words: list, cores: list[str], lows: list[str], nxt: int) -> bool:
    """Whether the word after an ASR sentence end inside a cued value is more of the value.

    Whisper puts full stops at the pauses of a number said in groups ("5 times. Oh well, I'm
    dying." for "five five five, oh one nine nine"): a number-like or unsure next word is
    taken as the value going on, not as a new sentence.
    """
    if nxt >= len(lows) or lows[nxt] in _VALUE_STOP:
        return False
    return _number_like(cores, lows, nxt) or float(words[nxt].probability) < _LOW_CONFIDENCE


def _number_like(cores: list[str], lows: list[str], i: int) -> bool:
    """Word i holds digits or is a spoken number word."""
    return number_like(cores[i])


def ends_sentence(word: Word) -> bool:
    """The ASR put a sentence end after this word."""
    return word.text.strip().endswith((".", "?", "!"))


UNSURE_PROB = 0.4
_UNSURE_MAX = 3
_UNSURE_MAX_DIGITS = 2  # a digit span's own growth; `continue_numbers` takes digit-like words later
DIGIT_SPAN_TYPES = frozenset("CARD SSN PASSPORT SORT_CODE PIN CODE PHONE ACCOUNT NUMBER".split())
_STRAY_GAP = 2  # words between a digit run and a stray digit word
_STRAY_UNSURE = 0.7  # ... each of them less sure than this


# Words a telephone line makes of a digit next to a number ("I'm [double 6]" for "five double
# six", "[748,] time free." for "... five three"): taken into a digit span when unsure.
_SOUNDALIKES = frozenset(HOMOPHONES) | _DIGIT_ALIKES
_CARRY_PROB = 0.85  # every word a digit span is carried over is less sure than this
_CARRY_GAP = 2  # other words between the span and a further number


def continue_numbers(transcript: Transcript, spans: list[PiiSpan]) -> list[PiiSpan]:
    """`spans` (of `transcript`'s words, in order) with each digit span carried on over the
    rest of a number the ASR broke up: an adjacent digit-like word (a number, a digit
    homophone, "I'm", "time", ...) or a number up to two words away, when the ASR was unsure
    of every word taken; on over a full stop the value goes on after, never back over a cue.

    Applied to the final spans, after the second opinion: a span grown before it would cover
    the unsure words that make a snippet worth asking about, and a wider span Whisper base
    found there would no longer count as new (`second_opinion.only_new`)."""
    words = transcript.words
    cands = [_Cand(s.first_word, s.last_word, s.type) for s in spans]
    if any(c.first < 0 for c in cands):
        return spans
    cores = [clean(w.text) for w in words]
    lows = [c.lower() for c in cores]
    out = []
    for s, c in zip(spans, _bridge_numbers(_continue_numbers(cands, words, cores, lows), words), strict=True):
        if (c.first, c.last) == (s.first_word, s.last_word):
            out.append(s)
            continue
        start, end = _span_times(words, c.first, c.last)
        out.append(PiiSpan(s.type, min(start, s.start_s), max(end, s.end_s), c.first, c.last))
    return out


def _digit_like(cores: list[str], lows: list[str], j: int) -> bool:
    """Word j may say a digit of a misheard number: a number, a digit homophone, "I'm", ..."""
    return bool(_soup_digits(cores[j], lows[j])) or lows[j] in _SOUNDALIKES


def _all_unsure(words: list, lo: int, hi: int, below: float) -> bool:
    """The ASR was less sure than `below` of every one of words lo..hi-1."""
    return all(float(words[i].probability) < below for i in range(lo, hi))


def _walls(words: list, lo: int, hi: int) -> bool:
    """A sentence ends after, or a cue is, one of words lo..hi-1: a value does not go on over it."""
    return any(ends_sentence(words[i]) or _is_cue_word(words[i].text) for i in range(lo, hi))


def _continue_numbers(cands: list[_Cand], words: list, cores: list[str], lows: list[str]) -> list[_Cand]:
    def fits(j: int, gap: int) -> bool:  # a spelled ordinal is a date's ("the fourth of")
        if lows[j] in _ORDINAL_WORDS:
            return False
        return _digit_like(cores, lows, j) if gap == 0 else number_like(cores[j])

    def unsure(lo: int, hi: int) -> bool:  # words lo..hi-1
        return _all_unsure(words, lo, hi, _CARRY_PROB)

    def stops(lo: int, hi: int) -> bool:  # a sentence ends for good after one of words lo..hi-1
        ends = (i for i in range(lo, hi) if ends_sentence(words[i]))
        return any(not _value_goes_on(words, cores, lows, i + 1) for i in ends)

    out: list[_Cand] = []
    for k, c in enumerate(cands):
        a, b = c.first, c.last
        lo, hi = _room(cands, k, len(words))
        grown = c.type in DIGIT_SPAN_TYPES
        while grown:
            grown = False
            for gap in range(_CARRY_GAP + 1):
                j = b + gap + 1
                if j > hi or stops(b, j):
                    break
                if fits(j, gap) and unsure(b + 1, j + 1):
                    b, grown = j, True
                    break
            for gap in range(_CARRY_GAP + 1):
                j = a - gap - 1
                if j < lo or _walls(words, j, a):
                    break
                if fits(j, gap) and unsure(j, a):
                    a, grown = j, True
                    break
        out.append(_Cand(a, b, c.type))
    return out


_BRIDGE_GAP = 2  # words between two digit spans that one number may have been misheard as


def _bridge_numbers(cands: list[_Cand], words: list) -> list[_Cand]:
    """Each digit span carried on to the next digit span when at most two words lie between,
    every one unsure, no cue and no sentence end: one number with a misheard word in the middle
    ("[PHONE] I made [NUMBER]" for "... three six three double one seven oh")."""
    out = list(cands)
    order = sorted(range(len(out)), key=lambda i: out[i].first)
    for x, y in itertools.pairwise(order):
        a, b = out[x], out[y]
        between = range(a.last + 1, b.first)
        if (
            a.type in DIGIT_SPAN_TYPES
            and b.type in DIGIT_SPAN_TYPES
            and 1 <= len(between) <= _BRIDGE_GAP
            and _all_unsure(words, a.last + 1, b.first, _CARRY_PROB)
            and not ends_sentence(words[a.last])
            and not _walls(words, a.last + 1, b.first)
        ):
            out[x] = _Cand(a.first, b.first - 1, a.type)
    return out


_CUE_REACH = 5  # words between a number cue and the digit span it announces


def _back_to_cue(cands: list[_Cand], words: list, cores: list[str], lows: list[str]) -> list[_Cand]:
    """Each digit span taken back to a number cue at most five words before it, when the words
    between say digits and are each digit-like or unsure: the value's first digits misheard
    ("social security number in [9 to M and] 0, 3 to 2 8, 0"). The cue and the words that
    link it to the value ("is", "in", "number") stay readable."""

    def cue_start(a: int, lo: int) -> int:  # where the span starting at word a may start
        for end in range(a - 1, max(lo, a - 1 - _CUE_REACH) - 1, -1):
            if ends_sentence(words[end]):
                break
            if _number_cue_at(lows, end) is not None:
                first = end + 1
                while first < a and lows[first] in _SOUP_LINKS:
                    first += 1
                said = [_digit_like(cores, lows, i) for i in range(first, a)]
                unsure = [float(words[i].probability) < _CARRY_PROB for i in range(first, a)]
                return first if any(said) and all(map(operator.or_, said, unsure)) else a
        return a

    return [
        _Cand(cue_start(c.first, _room(cands, k, len(words))[0]), c.last, c.type)
        if c.type in DIGIT_SPAN_TYPES else c
        for k, c in enumerate(cands)
    ]  # fmt: skip


def _reach_stray_digits(cands: list[_Cand], words: list, cores: list[str], lows: list[str]) -> list[_Cand]:
    """Grow a digit span (already grown over unsure words) to a lone digit word one or two
    words away when the ASR was not sure of it or the words between: the number's first
    digits misheard around it ("to a 7 year old by 9, 6, 1, 6" for "seven seven zero five,
    nine six one six"); then over the unsure words beyond it."""

    def unsure(lo: int, hi: int) -> bool:  # words lo..hi-1: the stray digit and those between
        return _all_unsure(words, lo, hi, _STRAY_UNSURE)

    def one_sentence(lo: int, hi: int) -> bool:  # no sentence ends after words lo..hi-1
        return not any(ends_sentence(words[i]) for i in range(lo, hi))

    out: list[_Cand] = []
    for k, c in enumerate(cands):
        a, b = c.first, c.last
        if c.type in DIGIT_SPAN_TYPES:
            lo, hi = _room(cands, k, len(words))
            grown = True
            while grown:
                grown = False
                for gap in range(1, _STRAY_GAP + 1):
                    j = a - gap - 1
                    if j >= lo and _number_like(cores, lows, j) and unsure(j, a) and one_sentence(j, a):
                        a, grown = j, True
                        break
                    j = b + gap + 1
                    if (
                        j <= hi and _number_like(cores, lows, j)
                        and unsure(b + 1, j + 1) and one_sentence(b, j)
                    ):
                        b, grown = j, True
                        break
            if (a, b) != (c.first, c.last):  # and over the unsure words beyond the stray digit
                a, b = _grow_unsure(a, b, lo, hi, words)
        out.append(_Cand(a, b, c.type))
    return out


_ENDING_REACH = 8  # words between personal data and the address ending that follows it


def _on_to_address_ending(cands: list[_Cand], words: list, lows: list[str]) -> list[_Cand]:
    """A span followed, in the same sentence and within eight words, by an address ending that
    nothing covers (".com", "not com", "look not calm") is that address, its middle misheard
    ("My email is [number three under core] and you will have an ample .com"): when the span is
    an e-mail, follows an address cue, or is a name before an ending that says the domain."""
    out = list(cands)
    for k in range(len(lows)):
        sure = address_ending(lows, k)
        if not sure or any(c.first <= k <= c.last for c in out):
            continue
        before = [i for i, c in enumerate(out) if c.last < k]
        if not before:
            continue
        c = out[before[-1]]
        ended = any(sure_sentence_end(w.text, w.probability) for w in words[c.last : k])
        if c.last < k - _ENDING_REACH or ended:
            continue
        if c.type == "EMAIL" or email_cue_before(lows, c.first) or (c.type == "NAME" and sure == 2):
            out[before[-1]] = _Cand(c.first, k, "EMAIL")
    return out


_LOOP_MIN = 3  # the same word this many times in a row: the ASR looping, not speech


def _through_loops(cands: list[_Cand], lows: list[str]) -> list[_Cand]:
    """Each span carried on through the same word repeated after it, when the repeats run to
    at least three: Whisper loops on a word it cannot make out ("my email is tariqunder corle
    no no no no no ..."), and what it lost there is the rest of the value."""
    out: list[_Cand] = []
    for k, c in enumerate(cands):
        last = c.last
        _, hi = _room(cands, k, len(lows))
        run = last + 1
        while run <= hi and lows[run] == lows[last]:
            run += 1
        same = run - last  # the span's last word and its repeats
        while last - same + 1 > c.first and lows[last - same] == lows[last]:
            same += 1  # repeats already inside the span count too
        if same >= _LOOP_MIN and run - 1 > last:
            last = run - 1
        out.append(_Cand(c.first, last, c.type))
    return out


NAME_MAX_WORDS = 4  # a person's name with its title; a longer "name" is misheard speech


def _absorb_unsure(cands: list[_Cand], words: list) -> list[_Cand]:
    """Grow each span over up to three adjacent words the ASR was unsure of: next to personal
    data they are most often more of it, misheard ("5 double 2 2 8 [toxic stubble iron]").
    A digit span grows over two at most: the digit-like words further on are taken after the
    second opinion (`continue_numbers`), and a third unsure word was ordinary speech far more
    often than not ("Sword Code [4-2-9-0-2-1 Game branch] before"). A name grows to four words
    at most, forward growth given up first: past that the unsure words are the rest of the
    sentence misheard ("[Jane Harrington,] yes, the main")."""
    out: list[_Cand] = []
    for k, c in enumerate(cands):
        most = _UNSURE_MAX_DIGITS if c.type in DIGIT_SPAN_TYPES else _UNSURE_MAX
        a, b = _grow_unsure(c.first, c.last, *_room(cands, k, len(words)), words, most)
        if c.type == "NAME":
            b = max(c.last, min(b, a + NAME_MAX_WORDS - 1))
            a = min(c.first, max(a, b - NAME_MAX_WORDS + 1))
        out.append(_Cand(a, b, c.type))
    return out


def _room(cands: list[_Cand], k: int, n: int) -> tuple[int, int]:
    """The word indices span k may grow into: up to its neighbours (spans in order)."""
    lo = cands[k - 1].last + 1 if k > 0 else 0
    hi = cands[k + 1].first - 1 if k + 1 < len(cands) else n - 1
    return lo, hi


def _grow_unsure(
    first: int, last: int, lo: int, hi: int, words: list, most: int = _UNSURE_MAX
) -> tuple[int, int]:
    """words[first..last] grown over up to `most` unsure words each way, within lo..hi,
    never across a sentence end, nor back over a cue word ("Sword Code 9339": the cue that
    says a value follows is not part of it)."""

    def unsure(j: int) -> bool:
        return float(words[j].probability) < UNSURE_PROB

    def unsure_not_cue(j: int) -> bool:
        return unsure(j) and not _is_cue_word(words[j].text)

    return _grow(first, last, lo, hi, words, unsure_not_cue, unsure, most)


def _grow(
    first: int, last: int, lo: int, hi: int, words: list,
    back: Callable[[int], bool], on: Callable[[int], bool], most: int,
) -> tuple[int, int]:
    """words[first..last] grown over up to `most` words each way within lo..hi: back while
    `back(word index)` holds, on while `on(...)` does; never across a sentence end."""
    a, b = first, last
    while a - 1 >= max(lo, first - most) and back(a - 1) and not ends_sentence(words[a - 1]):
        a -= 1
    while b + 1 <= min(hi, last + most) and on(b + 1) and not ends_sentence(words[b]):
        b += 1
    return a, b


def cue_form(text: str) -> str:
    """A word as the cue rules read it: cleaned, lower-case, and only its last hyphen-joined
    part, since the ASR glues words it is unsure of ("Short-code," -> "code")."""
    return clean(text).lower().rsplit("-", 1)[-1]


def _is_cue_word(text: str) -> bool:
    """A word of a one-word number or phone cue ("code", "account", "number", ...)."""
    return cue_form(text) in _CUE_WORDS


def _plausible_s(text: str) -> float:
    """A generous upper bound for how long a word takes to say (seconds)."""
    return 0.1 + 0.06 * sum(ch.isalnum() for ch in text)


def _span_times(words: list, first: int, last: int) -> tuple[float, float]:
    """Start/end of words[first..last], widened over the gaps to the neighbouring words and
    into a neighbour whose timing is implausibly long: speech the ASR dropped (often digits
    or a spelled address it could not read) sits in those gaps, or is given to the adjacent
    word, so the tail of a number hides in "Thank" lasting a whole second."""
    start, end = float(words[first].start_s), float(words[last].end_s)
    if first > 0:
        prev = words[first - 1]
        start = min(start, max(float(prev.end_s), float(prev.start_s)))  # the gap before
        cut = float(prev.start_s) + _plausible_s(prev.text)
        if cut < float(prev.end_s):
            start = min(start, cut)
    if last + 1 < len(words):
        nxt = words[last + 1]
        end = max(end, float(nxt.start_s))  # the gap after: unrecognised speech or silence
        cut = float(nxt.end_s) - _plausible_s(nxt.text)
        if cut > float(nxt.start_s):
            end = max(end, cut)
    else:
        # the aligner often ends the last word early; after it there is nothing to keep
        end = max(end, float(words[last].start_s) + _spoken_upper_s(words[last].text))
    if first == 0:
        start = max(0.0, min(start, float(words[0].end_s) - _spoken_upper_s(words[0].text)))
    return start, end


def _spoken_upper_s(text: str) -> float:
    """Upper bound for saying a written token: digits take a word each."""
    digits = sum(ch.isdigit() for ch in text)
    letters = sum(ch.isalpha() for ch in text)
    return 0.2 + 0.45 * digits + 0.08 * letters


def mask_transcript(transcript: Transcript, spans: list[PiiSpan]) -> str:
    """The transcript text with each span's words replaced by `[TYPE]`, other words verbatim.

    Sentence punctuation that ended the last masked word is kept ("[PHONE].").
    Without words (or spans) the text is returned as it is.
    """
    words = transcript.words
    if not words:
        return transcript.text.strip()
    ends: dict[int, tuple[int, str]] = {}
    last_a = -1
    for s in sorted(spans, key=lambda s: (s.first_word, -s.last_word)):
        a = max(0, s.first_word)
        b = min(len(words) - 1, max(a, s.last_word))
        if last_a >= 0 and a <= ends[last_a][0]:  # overlapping spans: one mask covers both
            ends[last_a] = (max(b, ends[last_a][0]), ends[last_a][1])
            continue
        ends[a] = (b, s.type)
        last_a = a
    out: list[str] = []
    i = 0
    while i < len(words):
        if i in ends:
            b, typ = ends[i]
            tail = words[b].text.strip()
            punct = tail[len(tail.rstrip(".,;:!?")) :]
            out.append(f"[{typ}]{punct}")
            i = b + 1
            continue
        text = words[i].text.strip()
        if text:
            out.append(text)
        i += 1
    return " ".join(out)


# Every phrase after which personal data is expected (names, numbers, e-mails, addresses,
# dates of birth); `second_opinion` asks a larger ASR model about what follows one.
_ANY_CUE = PhraseIndex(
    [
        *UNSURE_NAME_CUES,  # bare "with" is left out: too common to ask about
        *[(w,) for w in "contact message ring".split()],
        *[cue for cue, _typ in _NUMBER_CUES],
        *[(w,) for w in _PHONE_CUES],
        *_VALUE_TYPES,
        *[(w,) for w in EMAIL_CUES],
        *_ADDRESS_CUES,
        *_DOB_CUES,
    ]
)


def cue_ends(lows: list[str]) -> list[int]:
    """Indices of the words (lower-cased, cleaned) that end a PII cue phrase."""
    return [j for j in range(len(lows)) if _ANY_CUE.any_ending_at(lows, j)]


# Last words of a cue that cannot end a sentence: the value must follow ("my name is", "call
# me", "write to me at"), unlike "... about my order" or "... by text".
_CUE_LINKS = frozenset("is was at to for me as by called named name's email's".split())


def cut_off_value(transcript: Transcript, duration_s: float) -> list[PiiSpan]:
    """The rest of the snippet after a PII cue that ends it with no full stop ("My name is"):
    the ASR expected more and dropped it, most often the value itself ("My name is Esther."
    through a telephone line). Audio only (type UNTRANSCRIBED, no words); no recognised
    word lies there to lose."""
    words = transcript.words
    if not words or ends_sentence(words[-1]) or words[-1].text.strip().endswith((",", ";", ":")):
        return []
    lows = [cue_form(w.text) for w in words]
    if lows[-1] not in _CUE_LINKS or not _ANY_CUE.any_ending_at(lows, len(lows) - 1):
        return []
    start = min(max(float(words[-1].end_s), 0.0), duration_s)
    return [PiiSpan("UNTRANSCRIBED", start, duration_s, -1, -1)] if duration_s > start else []


# ------------------------------------------------------------------ helpers


def _dedupe_emails(found: list[EmailMatch]) -> list[EmailMatch]:
    """Overlapping matches: keep the one that starts first and reaches furthest."""
    out: list[EmailMatch] = []
    for m in sorted(found, key=lambda m: (m.first, -m.last)):
        if out and m.first <= out[-1].last:
            if m.last > out[-1].last:
                out[-1] = EmailMatch(out[-1].first, m.last, out[-1].address)
            continue
        out.append(m)
    return out


def _is_suffix(domain: str) -> bool:
    from earshot.pipeline.pii_presidio import is_public_suffix_domain

    return is_public_suffix_domain(domain)


def _sentence_starts(raw: list[str]) -> list[bool]:
    out = []
    prev_end = True
    for text in raw:
        t = text.strip()
        out.append(prev_end)
        if t:
            prev_end = t.endswith((".", "?", "!"))
    return out


def _phrase_hits(lows: list[str], end: int, window: int) -> list[tuple[int, tuple[str, ...]]]:
    """(distance, cue) for every number cue ending in lows[end-window+1 .. end]."""
    hits = []
    for j in range(end, max(-1, end - window), -1):
        hits.extend((end - j, cue) for cue in _NUMBER_INDEX.ending_at(lows, j))
    return hits


def _classify_run(run: NumberRun, cores: list[str], lows: list[str]) -> _Cand:
    digits = run.digits
    written = " ".join(cores[run.first : run.last + 1])
    typ = None
    hits = _phrase_hits(lows, run.first - 1, _CUE_WINDOW)
    # a cue right after the number also counts: "... is my PIN"
    after = lows[run.last + 1 : run.last + 4]
    if hits:
        # nearest cue; among cues ending at the same word, the longest phrase
        hits.sort(key=lambda h: (h[0], -len(h[1])))
        typ = _NUMBER_CUE_TYPES[hits[0][1]]
    else:
        for w in after:
            if (w,) in _NUMBER_CUE_TYPES:
                typ = _NUMBER_CUE_TYPES[(w,)]
                break
    if _SSN_WRITTEN.fullmatch(written) and typ in (None, "SSN", "ACCOUNT"):
        typ = "SSN"
    elif _SORT_WRITTEN.fullmatch(written) and typ in (None, "SORT_CODE", "ACCOUNT"):
        typ = "SORT_CODE"
    if typ is None and 13 <= len(digits) <= 19 and luhn_ok(digits):
        typ = "CARD"
    if typ is None or typ == "DATE_OF_BIRTH":
        window = set(lows[max(0, run.first - _CUE_WINDOW) : run.first]) | set(after)
        phone_like = 7 <= len(digits) <= 15 and (
            bool(window & _PHONE_CUES)
            or bool(_PHONE_WRITTEN.fullmatch(written))
            or _valid_phone(digits, written)
        )
        if phone_like:
            typ = "PHONE"
        elif typ is None:
            typ = "NUMBER"
    if typ in ("PASSPORT", "SSN", "ACCOUNT", "CODE"):
        return _extend_letters(run, cores, typ)
    return _Cand(run.first, run.last, typ)


_PHONE_REGIONS = ("US", "GB", "IE", "CA", "AU", "IN")


def _valid_phone(digits: str, written: str) -> bool:
    """A valid number in one of the regions we serve, by `phonenumbers` (libphonenumber)."""
    if not 7 <= len(digits) <= 15:
        return False
    import phonenumbers

    candidates = [("+" + digits, None)] if written.startswith("+") else []
    candidates += [(digits, r) for r in _PHONE_REGIONS]
    for text, region in candidates:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(text, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def _letter(core: str) -> bool:
    core = core.replace(".", "")
    return 1 <= len(core) <= 2 and core.isalpha() and core.isupper() and core != "I"


_TIME_BEFORE = frozenset("at by until till til from around about before after since".split())
_TIME_AFTER = frozenset(
    "am pm a.m a.m. p.m p.m. o'clock tonight tomorrow today this in on".split()
)


_COMPACT_TIME = re.compile(r"(?:1[0-2]|[1-9])[0-5]\d")
_WRITTEN_TIME = re.compile(r"(?:[1-9]|1[0-2])[.:][0-5]\d")


def _is_clock_time(run: NumberRun, lows: list[str]) -> bool:
    """A clock time ("at ten thirty", "7:15 pm", "at 10.30"): not personal data."""
    before = lows[run.first - 1] if run.first > 0 else ""
    after = lows[run.last + 1] if run.last + 1 < len(lows) else ""
    joined = "".join(lows[run.first : run.last + 1])
    if not run.spoken and run.last - run.first <= 2 and _WRITTEN_TIME.fullmatch(joined):
        return before in _TIME_BEFORE or after in _TIME_AFTER
    if not run.spoken and _COMPACT_TIME.fullmatch(joined) and (
        run.first == run.last or (run.last == run.first + 1 and len(lows[run.last]) == 2)
    ):
        # "at 1030 on Monday", "at 10 30 on Monday": a spoken time written without its colon
        return (before in _TIME_BEFORE and after in _TIME_AFTER) or after in ("am", "pm")
    if not run.spoken or run.last - run.first > 2:
        return False
    ws = lows[run.first : run.last + 1]
    hour = UNITS.get(ws[0], TEENS.get(ws[0], -1))
    if not 1 <= hour <= 12:
        return False
    rest = ws[1:]
    if len(rest) == 1 and rest[0] in TEENS:
        minutes = TEENS[rest[0]]
    elif rest and rest[0] in TENS and TENS[rest[0]] <= 50:
        minutes = TENS[rest[0]] + (UNITS.get(rest[1], 99) if len(rest) == 2 else 0)
    else:
        return False
    if not 10 <= minutes <= 59:
        return False
    return before in _TIME_BEFORE or after in _TIME_AFTER


def _extend_letters(run: NumberRun, cores: list[str], typ: str) -> _Cand:
    """Identifiers often start or end with letters said one by one ("A B 1234567", "... C")."""
    a, b = run.first, run.last
    while a - 1 >= 0 and run.first - a < 3 and _letter(cores[a - 1]):
        a -= 1
    while b + 1 < len(cores) and b - run.last < 3 and _letter(cores[b + 1]):
        b += 1
    return _Cand(a, b, typ)


def _is_date_token(low: str, core: str) -> bool:
    if low in MONTHS or low in _ORDINAL_WORDS:
        return True
    if is_number_word(low) or low in UNITS or low in TEENS or low in TENS:
        return True
    if "-" in low and all(p in _ORDINAL_WORDS or p in TENS for p in low.split("-")):
        return True
    if written_digits(core) is not None and re.fullmatch(r"[\d/.\-]+(st|nd|rd|th)?", low):
        return True
    return False


def _widen_date(c: _Cand, cores: list[str], lows: list[str]) -> _Cand:
    """A year at the end of a full date takes the day and month with it ("the 23rd of
    November, 1977", "March 15, 1948" where the run is "15, 1948"): a full date is as
    identifying as the year alone."""
    if c.type not in ("NUMBER", "DATE_OF_BIRTH"):
        return c
    digits = written_digits(cores[c.last]) or ""
    if not (len(digits) == 4 and 1900 <= int(digits) <= 2099):
        return c
    # a run of more words than the year: only when they are the day ("15, 1948")
    if any(not _is_date_token(lows[i], cores[i]) for i in range(c.first, c.last)):
        return c
    a = c.first
    month = False
    while a - 1 >= 0 and (
        _is_date_token(lows[a - 1], cores[a - 1]) or (lows[a - 1] in ("of", "the") and a - 1 < c.first - 1)
    ):
        month = month or lows[a - 1] in MONTHS
        a -= 1
        if c.first - a > 6:
            break
    while a < c.first and lows[a] == "of":
        a += 1
    return _Cand(a, c.last, c.type) if month else c


def _dates_of_birth(cores: list[str], lows: list[str]) -> list[_Cand]:
    out: list[_Cand] = []
    n = len(lows)
    for end in range(n):
        if not _DOB_INDEX.any_ending_at(lows, end):
            continue
        j = end + 1
        while j < n and j <= end + 3 and lows[j] in _DOB_FILLERS:
            j += 1
        first = j - 1 if j - 1 > end and lows[j - 1] == "the" else j
        last = -1
        while j < n and j <= first + 9:
            if _is_date_token(lows[j], cores[j]):
                last = j
            elif lows[j] not in ("of", "the", "and", ",", "/"):
                break
            j += 1
        if last >= first:
            out.append(_Cand(first, last, "DATE_OF_BIRTH"))
    return out


def _is_cap(core: str) -> bool:
    return bool(core) and core[0].isupper()


def _house_number_start(cores: list[str], lows: list[str], k: int) -> int:
    """Index of the first word of a house number ending at word k, or -1."""
    if k < 0:
        return -1
    if written_digits(cores[k]) is not None and len(cores[k]) <= 6:
        return k
    if is_number_word(lows[k]):
        a = k
        while a - 1 >= 0 and is_number_word(lows[a - 1]) and k - a < 4:
            a -= 1
        return a
    return -1


def _addresses(words_text: list[str], cores: list[str], lows: list[str]) -> list[_Cand]:
    out: list[_Cand] = []
    n = len(lows)
    gz = gazetteer()
    for s in range(1, n):
        if lows[s] not in STREET_SUFFIXES:
            continue
        # street name: 1-3 words before the suffix
        a = s - 1
        while a - 1 >= 0 and s - a < 3 and (
            _is_cap(cores[a - 1]) and lows[a - 1] not in FUNCTION_WORDS
        ):
            a -= 1
        if (lows[a] in FUNCTION_WORDS or not cores[a].replace("'", "").isalpha()) and not (
            a >= 1 and _house_number_start(cores, lows, a - 1) >= 0
        ):
            a = s  # look for a house number further back
        h = _house_number_start(cores, lows, a - 1)
        if h < 0:  # ASR-garbled street names: "76 to live a road"
            for k in range(a - 2, max(-1, a - 5), -1):
                if _sentence_break(words_text, k):
                    break
                h = _house_number_start(cores, lows, k)
                if h >= 0:
                    a = k + 1
                    break
        if h < 0 and not all(_is_cap(cores[x]) for x in range(a, s + 1)):
            continue
        if lows[s] in ("dr", "st", "way", "place", "court", "walk", "rise", "row") and h < 0:
            continue  # "Dr Smith", "St Ives", "the way", ... need a house number
        first = h if h >= 0 else a
        last = _extend_address(words_text, cores, lows, first, s, gz.common)
        out.append(_Cand(first, last, "ADDRESS"))
    out += _cued_addresses(words_text, cores, lows)
    return out


def _extend_address(
    words_text: list[str], cores: list[str], lows: list[str], first: int, s: int, common: frozenset
) -> int:
    """Extend a street address past its suffix over unit, town, state and postcode words."""
    import usaddress

    n = len(lows)
    last = s
    window_end = min(n, s + 9)
    try:
        tagged = usaddress.parse(" ".join(w.strip() for w in words_text[first:window_end]))
    except Exception:  # usaddress's CRF can fail on odd input; the street itself is enough
        return last
    if len(tagged) != window_end - first:
        return last
    for k in range(s + 1, window_end):
        label = tagged[k - first][1]
        core, low = cores[k], lows[k]
        ok_word = (
            written_digits(core) is not None
            or low in _DIRECTIONS
            or low in _UNIT_WORDS
            or (_is_cap(core) and low not in common and low not in FUNCTION_WORDS)
        )
        if label in _ADDRESS_LABELS and ok_word:
            last = k
        else:
            break
    return last


def _cued_addresses(words_text: list[str], cores: list[str], lows: list[str]) -> list[_Cand]:
    out: list[_Cand] = []
    n = len(lows)
    for end in range(n):
        if not _ADDRESS_INDEX.any_ending_at(lows, end):
            continue
        j = end + 1
        first = j
        last = -1
        has_number = False
        while j < n and j <= first + 10:
            core, low = cores[j], lows[j]
            if written_digits(core) is not None or is_number_word(low):
                has_number = True
                last = j
                # a house number is followed by the street name, whatever the ASR's casing:
                # up to the street suffix if one comes within four words, else two words
                suffix = next(
                    (k for k in range(j + 1, min(n, j + 5)) if lows[k] in STREET_SUFFIXES), -1
                )
                if suffix > 0 and not any(_sentence_break(words_text, k) for k in range(j, suffix)):
                    last = suffix
                else:
                    k = j + 1
                    while k < n and k <= j + 2 and _plain_word(lows[k]):
                        last = k
                        k += 1
                j = last + 1
                continue
            elif low in STREET_SUFFIXES or low in _DIRECTIONS or low in _UNIT_WORDS:
                last = j
            elif _is_cap(core) and low not in FUNCTION_WORDS:
                last = j
            elif low in ("the", "of") and j > first:
                pass
            else:
                break
            j += 1
        if last >= first and (has_number or last > first):
            out.append(_Cand(first, last, "ADDRESS"))
    return out


def _sentence_break(words_text: list[str], k: int) -> bool:
    """Word k ends a sentence (its raw form ends with . ? or !)."""
    return 0 <= k < len(words_text) and words_text[k].strip().endswith((".", "?", "!"))


_NOT_STREET = frozenset("tomorrow today tonight please thanks thank next near by".split())


def _plain_word(low: str) -> bool:
    return low.isalpha() and low not in FUNCTION_WORDS and low not in _NOT_STREET


def _uk_postcodes(cores: list[str]) -> list[_Cand]:
    out = []
    for i, c in enumerate(cores):
        if _UK_POSTCODE.fullmatch(c.upper()) and c.isupper():
            out.append(_Cand(i, i, "ADDRESS"))
        elif i + 1 < len(cores) and c.isupper() and cores[i + 1].isupper():
            if _UK_POSTCODE.fullmatch(f"{c} {cores[i + 1]}"):
                out.append(_Cand(i, i + 1, "ADDRESS"))
    return out


def _presidio_cands(
    cores: list[str], lows: list[str], runs: list[NumberRun], emails: list
) -> list[_Cand]:
    """Presidio over the normalised text: spoken numbers as digits, spoken e-mails written."""
    from earshot.pipeline.pii_presidio import analyze

    replaced: dict[int, tuple[int, str]] = {r.first: (r.last, r.digits) for r in runs if r.spoken}
    for m in emails:
        replaced[m.first] = (m.last, m.address)
    pieces: list[tuple[int, int, int, int]] = []  # char start, char end, first word, last word
    text_parts: list[str] = []
    pos = 0
    i = 0
    while i < len(cores):
        last, text = replaced.get(i, (i, cores[i]))
        if text:
            text_parts.append(text)
            pieces.append((pos, pos + len(text), i, last))
            pos += len(text) + 1
        i = last + 1
    text = " ".join(text_parts)
    out: list[_Cand] = []
    for hit in analyze(text):
        covered = [p for p in pieces if p[0] < hit.end and p[1] > hit.start]
        if not covered:
            continue
        first, last = covered[0][2], covered[-1][3]
        typ = hit.type
        if typ == "DATE":
            ctx = lows[max(0, first - 6) : first]
            if not any(w in ("born", "birth", "birthday", "dob", "birthdate") for w in ctx):
                continue
            typ = "DATE_OF_BIRTH"
        if typ == "PHONE" and sum(ch.isdigit() for ch in text[hit.start : hit.end]) < 7:
            continue
        out.append(_Cand(first, last, typ))
    return out


def _merge(cands: list[_Cand]) -> list[_Cand]:
    """Union overlapping spans (and adjacent ones of one type); the higher-priority type wins."""
    out: list[_Cand] = []
    for c in sorted(cands, key=lambda c: (c.first, -c.last)):
        if out:
            p = out[-1]
            if c.first <= p.last or (c.first == p.last + 1 and c.type == p.type):
                typ = p.type if _PRIORITY[p.type] <= _PRIORITY[c.type] else c.type
                out[-1] = _Cand(p.first, max(p.last, c.last), typ)
                continue
        out.append(c)
    return out
