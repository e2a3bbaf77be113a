"""Spoken-form normalisation for PII detection over ASR words.

ASR output says the same value in many ways: "555-0199", "five five five oh one nine nine",
"double five", "nine hundred and twelve", "jane dot doe at example dot com". This module
turns word sequences into the written value (digits, e-mail address) while remembering which
words it came from, so that detectors can work on values and spans can be mapped back to
word timings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EDGE_PUNCT = " \t\n\"'`“”‘’()[]{}<>,;:!?…*"

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
UNITS: dict[str, int] = {
    "zero": 0, "nought": 0, "naught": 0, "oh": 0, "o": 0,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
TEENS: dict[str, int] = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS: dict[str, int] = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
SCALES: dict[str, int] = {"hundred": 100, "thousand": 1000}
REPEATS: dict[str, int] = {"double": 2, "triple": 3, "treble": 3}
WEAK_ZERO = frozenset({"oh", "o"})  # digits only next to other digits
SEPARATOR_WORDS = {"dash", "hyphen", "-", "/", "slash"}
# ASR homophones of digits; counted only between two number words ("six for eight").
HOMOPHONES: dict[str, str] = {
    "for": "four", "to": "two", "too": "two", "won": "one", "ate": "eight",
    "free": "three", "tree": "three",
}  # fmt: skip
_COMPOUND_HOMOPHONES = {"free": "three", "tree": "three"}  # also inside "free-free-zero"
# words after which a leading homophone is a digit: "the code for free O double 6"
_NUMBER_LEAD_CUES = frozenset("code pin number is was card account".split())

NUMBER_WORDS = set(UNITS) | set(TEENS) | set(TENS) | set(SCALES)



def clean(raw: str) -> str:
    """A word without surrounding whitespace and punctuation (a final '.' too), case kept."""
    core = raw.strip(_EDGE_PUNCT)
    while core.endswith(".") and not re.fullmatch(r"(?:[A-Za-z]\.)+", core):
        core = core[:-1].rstrip(_EDGE_PUNCT)
    return core


def split_number_word(low: str) -> list[str]:
    """'twenty-three' -> ['twenty', 'three']; other words unchanged (as a one-item list)."""
    if "-" in low:
        parts = [p for p in low.split("-") if p]
        if parts and all(p in NUMBER_WORDS or p in REPEATS for p in parts):
            return parts
        if (
            len(parts) > 1
            and all(p in NUMBER_WORDS or p in REPEATS or p in _COMPOUND_HOMOPHONES for p in parts)
            and any(p in NUMBER_WORDS for p in parts)
        ):
            return [_COMPOUND_HOMOPHONES.get(p, p) for p in parts]
    return [low]


def is_number_word(low: str) -> bool:
    """True if the lower-cased word is (or is a hyphenated compound of) spoken number words."""
    parts = split_number_word(low)
    return all(p in NUMBER_WORDS for p in parts) and bool(parts)


def written_digits(core: str) -> str | None:
    """The digits in a written numeric/alphanumeric token ('555-0199' -> '5550199'), else None.

    Ordinals ('3rd') count; letters and other characters are kept out of the digit string,
    whatever they are: the ASR glues words onto numbers ("20-72-80-I'm"), and a digit run
    must be masked whatever surrounds it.
    """
    if not core or not any(c.isdigit() for c in core):
        return None
    return "".join(c for c in core if c.isdigit())


def spoken_to_digits(words: list[str]) -> str:
    """Digits spoken by a run of number words (lower case, no punctuation).

    Digit by digit ("five five five" -> "555"), pairs ("nineteen eighty five" -> "1985"),
    compounds ("nine hundred and twelve" -> "912", "four thousand five hundred" -> "4500"),
    repeats ("double five" -> "55"). Words that are not number words are ignored.
    """
    out: list[str] = []
    base = 0  # thousands part of the current compound
    rem = 0  # part below a thousand
    last: str | None = None  # kind of the last word in the current compound
    repeat = 1

    def flush() -> None:
        nonlocal base, rem, last
        if last is not None:
            out.append(str(base + rem))
        base, rem, last = 0, 0, None

    tokens: list[str] = []
    for w in words:
        tokens.extend(split_number_word(w))
    for tok in tokens:
        if tok in REPEATS:
            flush()
            repeat = REPEATS[tok]
            continue
        if tok in UNITS:
            u = UNITS[tok]
            if repeat > 1:
                flush()
                out.append(str(u) * repeat)
                repeat = 1
                continue
            if u and last == "tens" and rem % 10 == 0:
                rem += u
                last = "unit"
            elif u and last in ("hundred", "thousand"):
                rem += u
                last = "unit"
            else:
                flush()
                rem, last = u, "unit"
        elif tok in TEENS:
            if last in ("hundred", "thousand") and rem % 100 == 0:
                rem += TEENS[tok]
            else:
                flush()
                rem = TEENS[tok]
            last = "teen"
        elif tok in TENS:
            if last in ("hundred", "thousand") and rem % 100 == 0:
                rem += TENS[tok]
            else:
                flush()
                rem = TENS[tok]
            last = "tens"
        elif tok == "hundred":
            if last in ("unit", "teen", "tens") and rem < 100:
                rem *= 100
            else:
                flush()
                rem = 100
            last = "hundred"
        elif tok == "thousand":
            if last is not None and base == 0 and rem < 1000:
                base, rem = max(rem, 1) * 1000, 0
            else:
                flush()
                base, rem = 1000, 0
            last = "thousand"
        repeat = 1
    flush()
    return "".join(out)


class PhraseIndex:
    """Cue phrases indexed by their last word, so "does a cue end at word j" is a dict lookup."""

    def __init__(self, phrases: object) -> None:
        self._by_last: dict[str, list[tuple[str, ...]]] = {}
        for phrase in phrases:  # type: ignore[attr-defined]
            self._by_last.setdefault(phrase[-1], []).append(tuple(phrase))
        for v in self._by_last.values():
            v.sort(key=len, reverse=True)

    def ending_at(self, lows: list[str], j: int) -> list[tuple[str, ...]]:
        """Phrases that end at word j (longest first)."""
        if j < 0 or j >= len(lows):
            return []
        return [
            p for p in self._by_last.get(lows[j], ())
            if j - len(p) + 1 >= 0 and tuple(lows[j - len(p) + 1 : j + 1]) == p
        ]  # fmt: skip

    def any_ending_at(self, lows: list[str], j: int) -> bool:
        """True if some phrase ends at word j."""
        return bool(self.ending_at(lows, j))


@dataclass(frozen=True)
class NumberRun:
    """Consecutive words that together say a number: words[first..last] (inclusive)."""

    first: int
    last: int
    digits: str  # the digits said, in order
    written: str  # the words as written (cleaned), joined by spaces
    spoken: bool  # at least one word was a spoken number word


def _kind(core: str, low: str) -> str:
    if written_digits(core) is not None:
        return "D"
    if low in REPEATS:
        return "R"
    if low in WEAK_ZERO:
        return "O"
    if is_number_word(low):
        return "N"
    if low == "and":
        return "A"
    if low in HOMOPHONES:
        return "H"
    if low in SEPARATOR_WORDS:
        return "S"
    return "-"


def find_number_runs(cores: list[str], min_digits: int = 3) -> list[NumberRun]:
    """Runs of written and/or spoken number words saying at least `min_digits` digits.

    `cores` are the cleaned words (see `clean`). A run may mix forms ("five five five 0199").
    "oh"/"o" count as zero only next to another number word, "double"/"triple" only before
    one, "and" only inside a compound ("nine hundred and twelve"), dashes only between digits.
    A homophone ("free", "for") next to "double" is a digit, and so is any word right after
    "double" when more digits follow (the repeated digit, misheard).
    """
    lows = [c.lower() for c in cores]
    kinds = [_kind(c, lo) for c, lo in zip(cores, lows, strict=True)]
    n = len(cores)
    runs: list[NumberRun] = []
    i = 0
    while i < n:
        if kinds[i] not in ("D", "N", "R", "O"):
            i += 1
            continue
        j = i
        while j + 1 < n:
            k = kinds[j + 1]
            if k in ("D", "N", "R", "O"):
                j += 1
                continue
            if k == "H" and (kinds[j] == "R" or (
                j + 2 < n and kinds[j + 2] == "R" and _single_digit(cores[j])
            )):
                j += 1  # "double free", "6 free double": a homophone next to a repeat is a digit
                continue
            if k == "-" and kinds[j] == "R" and j + 2 < n and kinds[j + 2] in ("D", "N", "O", "R"):
                j += 2  # "double high double 8": the repeated digit misheard, more digits after
                continue
            if k in ("A", "S", "H") and j + 2 < n and kinds[j + 2] in ("D", "N", "O", "R"):
                if k == "A" and not (
                    (lows[j] in ("hundred", "thousand") and kinds[j + 2] == "N")
                    or _digit_count(cores[i : j + 1], kinds[i : j + 1], lows[i : j + 1]) >= 3
                ):
                    break
                if k == "H" and not _homophone_is_digit(cores, j + 1):
                    break
                j += 2
                continue
            if k == "-" and j + 2 < n and _bridgeable(cores, j + 1):
                j += 2  # one misheard word inside digits said one by one
                continue
            break
        # trim words that only count inside a run
        a, b = i, j
        while a <= b and (kinds[a] == "R" and (a == b or kinds[a + 1] not in ("N", "O", "D"))):
            a += 1
        while b >= a and kinds[b] in ("R", "A", "S"):
            b -= 1
        # "a hundred", "thousand": a scale word needs a number before it
        while a <= b and lows[a] in SCALES:
            a += 1
        # "the code for free O double 6": a homophone right after a number cue
        while a - 1 >= 0 and kinds[a - 1] == "H" and a - 2 >= 0 and (
            lows[a - 2] in _NUMBER_LEAD_CUES or kinds[a - 2] == "H"
        ) and b > a:
            a -= 1
        # a lone "oh"/"o" (or only ohs) is an interjection or a letter, not a number
        if a <= b and all(kinds[x] == "O" for x in range(a, b + 1)):
            i = j + 1
            continue
        if a <= b:
            digits = _run_digits(cores[a : b + 1], kinds[a : b + 1], lows[a : b + 1])
            if len(digits) >= min_digits:
                runs.append(
                    NumberRun(
                        first=a,
                        last=b,
                        digits=digits,
                        written=" ".join(cores[a : b + 1]),
                        spoken=any(kinds[x] in ("N", "O", "R") for x in range(a, b + 1)),
                    )
                )
        i = j + 1
    return runs


def _digit_count(cores: list[str], kinds: list[str], lows: list[str]) -> int:
    return len(_run_digits(cores, kinds, lows))


def _single_digit(core: str) -> bool:
    """One digit, written or said ("6", "six", "oh"), possibly with separators ("8.7.6")."""
    low = core.lower()
    if low in UNITS:
        return True
    digits = written_digits(core)
    return digits is not None and (len(digits) == 1 or re.fullmatch(r"\d(?:[.\-]\d)+", core) is not None)


def _homophone_is_digit(cores: list[str], h: int) -> bool:
    """ "for"/"to" at h is a digit when it sits inside digits said one by one: single
    digits on both sides and at least two on one side ("five six for eight", not "2 to 3")."""
    def single(i: int) -> bool:
        return 0 <= i < len(cores) and _single_digit(cores[i])

    return single(h - 1) and single(h + 1) and (single(h - 2) or single(h + 2))


def _bridgeable(cores: list[str], g: int) -> bool:
    """Word g (not a number word) sits between single digits, with at least three single
    digits around it ("8 number 4 number 8 8": "double" misheard), so it is part of them."""
    def single(i: int) -> bool:
        return 0 <= i < len(cores) and _single_digit(cores[i])

    if not (single(g - 1) and single(g + 1)):
        return False
    return sum(single(i) for i in range(g - 3, g + 6) if i != g) >= 3


def _run_digits(cores: list[str], kinds: list[str], lows: list[str]) -> str:
    parts: list[str] = []
    spoken: list[str] = []
    for core, kind, low in zip(cores, kinds, lows, strict=True):
        if kind == "D":
            repeat = 1
            if spoken and spoken[-1] in REPEATS:  # "double 4"
                repeat = REPEATS[spoken.pop()]
            if spoken:
                parts.append(spoken_to_digits(spoken))
                spoken = []
            digits = written_digits(core) or ""
            parts.append(digits * repeat if len(digits) == 1 else digits)
        elif kind in ("N", "O", "R", "A"):
            spoken.append(low)
        elif kind == "H":
            spoken.append(HOMOPHONES[low])
    if spoken:
        parts.append(spoken_to_digits(spoken))
    return "".join(parts)


def luhn_ok(digits: str) -> bool:
    """Luhn checksum, as used by payment cards."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# ---------------------------------------------------------------- e-mail (spoken and split)

_EMAIL_SEPS = {
    "dot": ".", "period": ".", "point": ".", ".": ".",
    "underscore": "_", "_": "_", "dash": "-", "hyphen": "-", "-": "-",
}  # fmt: skip
_AT_WORDS = {"at", "@"}
EMAIL_CUES = {"email", "e-mail", "mail", "address", "emails", "e-mails"}
_LOCAL_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+\-]*")
_DOMAIN_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*(?:\.[A-Za-z0-9\-]+)*")
_LOCAL_STOP = {
    "is", "at", "me", "my", "the", "a", "an", "to", "and", "or", "it's", "its", "it", "on",
    "send", "write", "reach", "email", "e-mail", "mail", "address", "emails", "contact",
    "please", "use", "try", "us", "him", "her", "them", "you", "i", "was", "be", "will",
}  # fmt: skip


@dataclass(frozen=True)
class EmailMatch:
    """An e-mail address said or written over words[first..last] (inclusive)."""

    first: int
    last: int
    address: str


def find_emails(cores: list[str], is_suffix: object) -> list[EmailMatch]:
    """E-mail addresses in spoken ("jane dot doe at example dot com") or split written form.

    `is_suffix(label)` says whether a domain's last label(s) are a public suffix
    (offline list). Single-token written addresses are found too.
    """
    lows = [c.lower() for c in cores]
    n = len(cores)
    found: list[EmailMatch] = []
    check = is_suffix if callable(is_suffix) else (lambda _s: False)
    for k in range(n):
        low = lows[k]
        if "@" in low and low not in _AT_WORDS:
            # written address possibly split: "jane.doe@" "example.com"
            j = k
            text = low
            while (
                j + 1 < n
                and (text.endswith("@") or text.endswith("."))
                and _DOMAIN_TOKEN.fullmatch(lows[j + 1])
            ):
                j += 1
                text += lows[j]
            local, _, domain = text.partition("@")
            start = k
            if not local and k > 0 and _LOCAL_TOKEN.fullmatch(lows[k - 1]):
                start, local = k - 1, lows[k - 1]
            if local and "." in domain and check(domain):
                found.append(EmailMatch(start, j, f"{local}@{domain}"))
            continue
        if low not in _AT_WORDS:
            continue
        domains = [(e, d) for e, d in _domain_candidates(lows, k + 1) if check(d)]
        if not domains:
            continue
        dom_end, domain = domains[0]
        loc_start, local = _local_before(lows, k - 1)
        if loc_start < 0:
            continue
        found.append(EmailMatch(loc_start, dom_end, f"{local}@{domain}"))
    return _dedupe(found)


_DOTTED = re.compile(r"(?:[a-z0-9_\-]*\.)+[a-z0-9_\-]+|\.[a-z0-9_\-]+")
_WEB_CUES = EMAIL_CUES | {"write", "reach", "contact", "send", "details", "website", "site", "www"}


def find_web_addresses(cores: list[str], is_suffix: object) -> list[EmailMatch]:
    """E-mail addresses as ASR tends to write a spoken one: like a web address, split over
    words ("quin .goat email .com", "www.enggrid.com") after an e-mail cue.

    A chain of up to six words, at least one dotted, ending in a public suffix; it counts
    after a cue word (email, write, reach, ...) within six words, or when it has "www" or
    two dotted words.
    """
    lows = [c.lower() for c in cores]
    check = is_suffix if callable(is_suffix) else (lambda _s: False)
    found: list[EmailMatch] = []
    n = len(lows)
    k = 0
    while k < n:
        low = lows[k]
        label = low.rsplit(".", 1)[-1] if "." in low else ""
        if not (_DOTTED.fullmatch(low) and label.isalpha() and check("x." + label)):
            k += 1
            continue
        start = k
        while start - 1 >= 0 and k - start < 5:
            prev = lows[start - 1]
            if not re.fullmatch(r"[\w.\-]+", prev):
                break
            # "email" inside the chain is ASR for "gmail": only between dotted words
            if prev in _LOCAL_STOP and not (start - 2 >= 0 and "." in lows[start - 2]):
                break
            start -= 1
        chain = lows[start : k + 1]
        dotted = sum(1 for w in chain if "." in w)
        cue = any(w in _WEB_CUES for w in lows[max(0, start - 6) : start])
        if cue or "www" in "".join(chain) or dotted >= 2:
            text = "".join(chain)
            if not re.fullmatch(r"\d+(?:\.\d+)*", text):
                found.append(EmailMatch(start, k, text))
        k += 1
    return _dedupe(found)


_EMAIL_SPAN_CUES = PhraseIndex([
    ("email", "is"), ("email", "address", "is"), ("e-mail", "is"), ("mail", "is"),
    ("email's",), ("write", "to", "me", "at"), ("reach", "me", "at"), ("email", "me", "at"),
    ("contact", "me", "at"), ("details", "to"), ("send", "it", "to"), ("email", "it", "to"),
])  # fmt: skip
# words that say "this is an address being spelled", as ASR writes them ("not" for "dot")
_EMAIL_SIGNALS = frozenset(
    "dot not period underscore at com come calm org net uk gmail hotmail outlook yahoo "
    "icloud email mail".split()
)
_EMAIL_SOUP_STOP = frozenset("please thanks thank any anytime if because".split())
_EMAIL_SOUP_NOT_FIRST = frozenset("not my your same still wrong no changed".split())
_TLD_WORDS = ("com", "come", "calm", "org", "net", "uk", "io")
_TLD_SUFFIXES = tuple("." + t for t in _TLD_WORDS)  # ".com", ... ending a dotted word
_CONTINUE_WORDS = frozenset("dot not period underscore at".split())
_SPOKEN_DOTS = ("dot", "not", "period")  # a spelled address's "dot", as ASR writes it
_UNSURE_DOT = 0.5  # word probability under which its full stop may be a misheard "dot"


def find_spoken_email_soup(
    cores: list[str], raw: list[str], probs: list[float] | None = None
) -> list[EmailMatch]:
    """After "my email is", "write to me at", ...: the words up to the end of the clause when
    they carry address signals ("dot"/"not", "at", "com", a dotted word) - what ASR makes of
    a spelled address it did not understand ("the meatry not petra me not look not come").

    A full stop after a word the ASR was unsure of (`probs` < 0.5) does not end the clause:
    it is most often a "dot" heard as a pause ("rahol. send you will at email .com").
    """
    lows = [c.lower() for c in cores]
    n = len(lows)
    found: list[EmailMatch] = []
    for cue_end in range(n - 1):
        if not _EMAIL_SPAN_CUES.any_ending_at(lows, cue_end):
            continue
        first = cue_end + 1
        if lows[first] in _EMAIL_SOUP_NOT_FIRST or not cores[first]:
            continue
        signals = 0
        last = first - 1
        complete = False
        for j in range(first, min(n, first + 10)):
            w = lows[j]
            spoken_dot = not w and raw[j].strip() == "."  # "dot" written as a lone full stop
            if w in _EMAIL_SOUP_STOP or (
                complete and w not in _CONTINUE_WORDS and "." not in w and not spoken_dot
            ):
                break
            # the ASR glues words it is unsure of with hyphens: "rah-m-t-not-more-out-look-not-com"
            parts = [p for p in w.split("-") if p] if "-" in w else []
            suffix = w.rstrip(".").endswith(_TLD_SUFFIXES)
            complete = suffix or (signals >= 1 and w in _TLD_WORDS)
            last = j
            if w in _EMAIL_SIGNALS or "." in w.rstrip(".") or "@" in w or spoken_dot:
                signals += 1
            if len(parts) > 1:
                signals += sum(p in _EMAIL_SIGNALS for p in parts)
                complete = complete or (signals >= 2 and parts[-1] in _TLD_WORDS)
            if suffix or _split_underscore(lows, j):
                signals += 1  # "example.com", ".com", "under score": an address on their own
            unsure = probs is not None and probs[j] < _UNSURE_DOT
            if raw[j].strip().endswith(("?", "!")) or (
                raw[j].strip().endswith(".") and "." not in w.rstrip(".") and not unsure
                and not spoken_dot
            ):
                break  # the clause ends here ("example.com." ends it too, after the word)
        if signals >= 2 and last >= first:
            found.append(EmailMatch(first, last, ""))
    return found


# Words before a spelled address that say one is coming, as a telephone line leaves them
# ("You can rise to me, ..." for "write to me at"; "the details too." for "details to").
_EMAIL_CONTEXT = frozenset("write rise email e-mail mail details reach contact send".split())
_EMAIL_CONTEXT_SKIP = frozenset("to too me at as a the it is was tell address".split())
_MAIL_HOSTS = ("gmail", "hotmail", "outlook", "yahoo", "icloud", "example", "proton", "aol")
_ENDING_WINDOW = 12  # words from the context word to the end of the address


def find_emails_by_ending(
    cores: list[str], raw: list[str], probs: list[float] | None = None
) -> list[EmailMatch]:
    """A spelled address found from its end: ".com" (or "not come" after a mail host or a word
    the ASR was unsure of), with a word such as "write", "email" or "details" at most twelve
    words before it and at least three address signals between. What a telephone line leaves
    of "write to me at dmitri dot nguyen at outlook dot com": "rise to me, the me three not
    new yet outlook not calm" - no cue for `find_spoken_email_soup`, but the end is clear.
    """
    lows = [c.lower() for c in cores]
    out: list[EmailMatch] = []
    for k, w in enumerate(lows):
        written = w.endswith(_TLD_SUFFIXES)
        spoken = (
            w in (*_TLD_WORDS, "comm") and k >= 2 and lows[k - 1] in _SPOKEN_DOTS
            and (_has_mail_host(lows[k - 2])
                 or (probs is not None and probs[k - 2] < _UNSURE_DOT))
        )  # fmt: skip
        if not (written or spoken):
            continue
        for start in _context_starts(lows, raw, probs, k):
            while start < k and lows[start] in _EMAIL_CONTEXT_SKIP:
                start += 1
            signals = sum(
                lows[j] in _EMAIL_SIGNALS or "." in lows[j] or _has_mail_host(lows[j])
                for j in range(start, k + 1)
            )
            if signals >= (2 if written else 3):
                out.append(EmailMatch(start, k, ""))
                break
    return out


def address_ending(lows: list[str], k: int) -> int:
    """How surely word k ends a spelled address: 2 for a written ending (".com", "gmail.com") or
    "dot"/"not" and the domain said ("not com"), 1 for the sound-alikes ("not calm", "dot come"),
    0 for none."""
    if lows[k].endswith(_TLD_SUFFIXES):
        return 2
    if lows[k] in _TLD_WORDS and k >= 1 and lows[k - 1] in _SPOKEN_DOTS:
        return 1 if lows[k] in ("come", "calm") else 2
    return 0


def email_cue_before(lows: list[str], first: int, reach: int = 4) -> bool:
    """A word that says an address is coming ("email", "write", "details", ...) among the
    `reach` words before word `first`."""
    return any(w in EMAIL_CUES or w in _EMAIL_CONTEXT for w in lows[max(0, first - reach) : first])


def sure_sentence_end(raw: str, prob: float | None) -> bool:
    """The ASR ended a sentence after this word and was sure of it: an unsure word's full stop
    may be a misheard "dot"."""
    text = raw.strip()
    return text.endswith(("?", "!")) or (text.endswith(".") and (prob is None or prob >= _UNSURE_DOT))


def _context_starts(lows: list[str], raw: list[str], probs: list[float] | None, k: int) -> list[int]:
    """Where an address ending at word k may start: after each context word ("write", "email",
    ...) within the window before it, nearest first, up to a sentence the ASR was sure had
    ended. The nearest may be part of the address misheard ("e-mail .com" for "gmail dot com")."""
    starts = []
    for j in range(k - 1, max(-1, k - 1 - _ENDING_WINDOW), -1):
        if lows[j] in _EMAIL_CONTEXT:
            starts.append(j + 1)
        if sure_sentence_end(raw[j], None if probs is None else probs[j]):
            break
    return starts


def _has_mail_host(low: str) -> bool:
    """The word holds a mail host's name, as ASR glues it ("outlooks", "toutlook")."""
    return any(h in low for h in _MAIL_HOSTS)


def _split_underscore(lows: list[str], j: int) -> bool:
    """Word j is the "score" of "under score", as ASR often writes a spoken "underscore"."""
    return lows[j] == "score" and j > 0 and lows[j - 1] == "under"


def _domain_candidates(lows: list[str], i: int) -> list[tuple[int, str]]:
    """Domains said from word i on: (last word index, 'example.com'), longest first."""
    out: list[tuple[int, str]] = []
    text = ""
    expect_label = True
    for j in range(i, len(lows)):
        tok = lows[j]
        if expect_label:
            if tok in _EMAIL_SEPS or not _DOMAIN_TOKEN.fullmatch(tok):
                break
            text += tok
            expect_label = tok.endswith(".")
            if "." in text.strip("."):
                out.append((j, text.strip(".")))
        else:
            sep = _EMAIL_SEPS.get(tok)
            if sep not in (".", "-"):
                break
            text += sep
            expect_label = True
    return out[::-1]


def _local_before(lows: list[str], i: int) -> tuple[int, str]:
    parts: list[str] = []
    j = i
    want_word = True
    start = -1
    while j >= 0:
        tok = lows[j]
        if want_word:
            if tok in _LOCAL_STOP or tok in _EMAIL_SEPS or not _LOCAL_TOKEN.fullmatch(tok):
                break
            parts.append(tok)
            start = j
            want_word = False
        else:
            sep = _EMAIL_SEPS.get(tok)
            if sep is None:
                break
            parts.append(sep)
            want_word = True
        j -= 1
    if start < 0:
        return -1, ""
    # Without separators, "jane doe at example dot com" after an e-mail cue: take up to
    # three plain words back to the cue.
    if len(parts) == 1:
        k = start - 1
        extra: list[tuple[int, str]] = []
        while k >= 0 and len(extra) < 2:
            tok = lows[k]
            if tok in _LOCAL_STOP or not _LOCAL_TOKEN.fullmatch(tok):
                break
            extra.append((k, tok))
            k -= 1
        cue_near = any(lows[x] in EMAIL_CUES for x in range(max(0, k - 3), k + 1)) if k >= 0 else False
        if extra and cue_near:
            start = extra[-1][0]
            parts.extend(tok for _, tok in extra)
    return start, "".join(reversed(parts))


def _dedupe(found: list[EmailMatch]) -> list[EmailMatch]:
    out: list[EmailMatch] = []
    for m in sorted(found, key=lambda m: (m.first, -m.last)):
        if out and m.first <= out[-1].last:
            continue
        out.append(m)
    return out
