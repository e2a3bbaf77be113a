"""Person names in ASR words: context cues plus an offline first-name/surname gazetteer.

The gazetteer is built from the person-name lists that ship inside the `faker` package
(census-derived and locale name lists, maintained on PyPI); nothing is downloaded. The
common-word list from the same package keeps ordinary English words from counting as names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from earshot.pipeline.pii_spoken import PhraseIndex

_LOCALES = (
    "en", "en_US", "en_GB", "en_IE", "en_IN", "en_KE", "en_NZ", "en_PK", "en_NG",
    "de_DE", "fr_FR", "es_ES", "es_MX", "it_IT", "pt_BR", "pl_PL", "nl_NL", "tr_TR",
    "yo_NG", "ig_NG", "ha_NG", "zu_ZA", "tw_GH", "id_ID", "vi_VN",
)  # fmt: skip

# Words that are never a name, whatever the lists say.
FUNCTION_WORDS = frozenset(
    """a an the and or but nor so yet if then than that this these those there here
    is are was were be been being am do does did done have has had having will would shall
    should can could may might must to of in on at by for with from about as into onto
    over under after before between through during without within out up down off
    i me my mine we us our you your he him his she her it its they them their
    what which who whom whose where when why how all any both each few more most other
    some such no not only own same too very just now also well yes yeah okay ok oh hi
    hey hello please thanks thank sorry sure right good great fine back again still
    really actually maybe here's there's it's that's what's i'm you're we're they're
    he's she's let's don't can't won't call text tell ask said say says one two three
    four five six seven eight nine ten number numbers code card account phone email
    mail dot com org net at street road avenue lane way drive""".split()
)

_PARTICLES = frozenset({"van", "von", "de", "der", "den", "da", "di", "du", "le", "la", "del",
                        "bin", "ibn", "al", "el", "mac", "st"})

TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "doctor", "prof", "professor",
                    "sir", "dame", "lady", "lord", "madam", "mister", "missus", "officer",
                    "detective", "nurse", "father", "sister", "brother", "aunt", "auntie",
                    "uncle", "grandma", "grandpa", "coach", "captain", "judge", "reverend",
                    "rev", "pastor", "rabbi", "imam"})  # fmt: skip

# Cues after which the next word is taken as a name unless it is a function word.
STRONG_CUES: tuple[tuple[str, ...], ...] = (
    ("my", "name", "is"), ("name", "is"), ("name's",), ("names", "is"), ("named",),
    ("called",), ("ask", "for"), ("asking", "for"), ("speak", "to"), ("speak", "with"),
    ("speaking", "to"), ("speaking", "with"), ("talk", "to"), ("talking", "to"),
    ("spoke", "to"), ("spoke", "with"), ("surname", "is"), ("first", "name", "is"),
    ("last", "name", "is"), ("full", "name", "is"), ("call", "me"), ("put", "me", "through", "to"),
    ("transfer", "me", "to"), ("goes", "by"), ("go", "by"), ("known", "as"),
)  # fmt: skip
# Cues after which the next word is a name if capitalised or in the gazetteer.
MEDIUM_CUES: tuple[tuple[str, ...], ...] = (
    ("this", "is"), ("i'm",), ("i", "am"), ("it's",), ("it", "is"), ("call",), ("text",),
    ("message",), ("email",), ("tell",), ("contact",), ("ring",), ("phone",), ("dear",),
    ("hi",), ("hello",), ("hey",), ("thanks",), ("thank", "you"), ("meet",), ("met",),
    ("ask",), ("asked",), ("told",), ("wife",), ("husband",), ("son",), ("daughter",),
    ("brother",), ("sister",), ("mother",), ("father",), ("mom",), ("mum",), ("dad",),
    ("friend",), ("colleague",), ("boss",), ("manager",), ("partner",), ("girlfriend",),
    ("boyfriend",), ("cousin",), ("nephew",), ("niece",), ("neighbour",), ("neighbor",),
)  # fmt: skip


# Prepositions and "and": the next word is a name only if capitalised mid-sentence and
# neither a common word nor a known non-person ("with Maynouyan", not "with Visa").
WEAK_CUES = frozenset({"with", "to", "for", "from", "by", "and", "about", "of"})


@dataclass(frozen=True)
class Gazetteer:
    """Lower-cased first names, surnames, common words and capitalised non-names."""

    first: frozenset[str]
    last: frozenset[str]
    common: frozenset[str]
    not_names: frozenset[str]

    def is_name(self, low: str) -> bool:
        """In either name list and long enough to be distinctive."""
        return len(low) >= 3 and (low in self.first or low in self.last)


def _names_from(provider: object, attrs: tuple[str, ...]) -> set[str]:
    out: set[str] = set()
    for attr in attrs:
        values = getattr(provider, attr, None)
        if not isinstance(values, tuple | list | dict):
            continue
        for v in values:
            if isinstance(v, str) and v.isascii() and v.replace("'", "").replace("-", "").isalpha():
                out.add(v.lower())
    return out


@cache
def gazetteer() -> Gazetteer:
    """Load the name lists once per process (about 0.2 s, all from installed packages)."""
    first: set[str] = set()
    last: set[str] = set()
    for loc in _LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{loc}").Provider
        except (ImportError, AttributeError):
            continue
        first |= _names_from(provider, ("first_names", "first_names_female", "first_names_male"))
        last |= _names_from(provider, ("last_names",))
    try:
        from faker.providers.lorem.en_US import Provider as Lorem

        common = {w.lower() for w in Lorem.word_list}
    except ImportError:
        common = set()
    common |= FUNCTION_WORDS
    text = resources.files("earshot.pipeline").joinpath("data/pii_not_names.txt").read_text()
    not_names = {
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    }
    first -= FUNCTION_WORDS
    last -= FUNCTION_WORDS
    return Gazetteer(frozenset(first), frozenset(last), frozenset(common), frozenset(not_names))


def _is_cap(core: str) -> bool:
    return len(core) >= 2 and core[0].isupper() and core[0].isalpha() and not core.isupper()


def _nameish(core: str) -> bool:
    """Looks like a name token: letters with optional apostrophe/hyphen ("O'Brien")."""
    return len(core) >= 2 and core.replace("'", "").replace("-", "").replace(".", "").isalpha()


_STRONG = PhraseIndex(STRONG_CUES)
_MEDIUM = PhraseIndex(MEDIUM_CUES)


def find_names(cores: list[str], sentence_start: list[bool]) -> list[tuple[int, int]]:
    """Word ranges (first, last inclusive) that are person names.

    `cores` are cleaned words (case kept), `sentence_start[i]` says whether word i begins
    a sentence (its capital letter then says nothing about it being a name).
    """
    gz = gazetteer()
    lows = [c.lower() for c in cores]
    n = len(cores)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < n:
        core, low = cores[i], lows[i]
        if not _nameish(core) or low in FUNCTION_WORDS or low.rstrip(".") in TITLES:
            i += 1
            continue
        cap = _is_cap(core) or (core.isupper() and len(core) > 2 and gz.is_name(low))
        prev = i - 1
        strong = _STRONG.any_ending_at(lows, prev)
        title = prev >= 0 and lows[prev].rstrip(".") in TITLES and (
            _is_cap(cores[prev]) or lows[prev].rstrip(".") in ("mr", "mrs", "ms", "dr", "prof")
        )
        medium = _MEDIUM.any_ending_at(lows, prev)
        in_gz = gz.is_name(low)
        start = False
        if strong or title:
            start = cap or low not in gz.common or in_gz
        elif medium:
            start = (cap and low not in gz.not_names and (in_gz or low not in gz.common)) or (
                in_gz and low not in gz.common and low not in gz.not_names
            )
        elif (
            cap
            and prev >= 0
            and lows[prev] in WEAK_CUES
            and not sentence_start[i]
            and low not in gz.not_names
            and low not in gz.common
        ):
            start = True
        elif cap and in_gz and low not in gz.not_names:
            # no cue: a capitalised gazetteer name mid-sentence, or at a sentence start
            # when it is not also a common word ("Will you ...", "May I ...").
            start = not sentence_start[i] or low not in gz.common
            if sentence_start[i] and start and i + 1 < n:
                # "Grace called" is a name; "Jack" alone starting a sentence is too risky
                # unless it is clearly a first name
                start = low in gz.first or _is_cap(cores[i + 1])
        if not start:
            i += 1
            continue
        j = i
        while j + 1 < n and j - i < 3:
            nxt, nlow = cores[j + 1], lows[j + 1]
            if nlow in FUNCTION_WORDS or not _nameish(nxt):
                if nlow in _PARTICLES and j + 2 < n and _is_cap(cores[j + 2]):
                    j += 2
                    continue
                break
            if (_is_cap(nxt) and nlow not in gz.not_names) or (
                (strong or title) and gz.is_name(nlow)
            ):
                j += 1
                continue
            break
        spans.append((i, j))
        i = j + 1
    return spans


# After these cues a low-confidence stretch is most likely a name the ASR could not spell
# (also the name cues after which `second_opinion` asks a larger ASR about unsure words).
UNSURE_NAME_CUES: tuple[tuple[str, ...], ...] = (
    *STRONG_CUES, ("tell",), ("call",), ("text",), ("ask",), ("this", "is"), ("hi",),
    ("hello",), ("dear",), ("talking", "with"),
)  # fmt: skip
_GARBLE_CUES = PhraseIndex([*UNSURE_NAME_CUES, ("with",)])
_GARBLE_STOP = frozenset(
    "at to in on from with about for that and but so because if yesterday today tomorrow "
    "tonight please thanks thank calling".split()
)
GARBLE_MAX_PROB = 0.7
# "this": "Hi, this is ..." - the "this is" cue that follows finds the name itself
_GARBLE_NOT_FIRST = frozenset(
    "is was are were be at in on to me you him her us them it back up this".split()
)


def find_garbled_names(
    cores: list[str], probs: list[float], raw: list[str]
) -> list[tuple[int, int]]:
    """Up to four words after a name cue ("ask for", "tell", "this is") that the ASR was
    unsure of (some word below GARBLE_MAX_PROB), up to a preposition, conjunction or the
    end of the clause: "ask for [no feel] at the front desk" was "ask for Zofia Doe".

    Confident words ("ask for a refund") are left alone.
    """
    lows = [c.lower() for c in cores]
    n = len(lows)
    out: list[tuple[int, int]] = []
    for cue_end in range(n - 1):
        if not _GARBLE_CUES.any_ending_at(lows, cue_end):
            continue
        if raw[cue_end].strip().endswith((".", "?", "!")):
            continue
        first = cue_end + 1
        if lows[first] in _GARBLE_NOT_FIRST:  # "called is ...", "call me at ..."
            continue
        last = first - 1
        for j in range(first, min(n, first + 4)):
            if lows[j] in _GARBLE_STOP or not cores[j]:
                break
            last = j
            if raw[j].strip().endswith((".", "?", "!", ",", ";", ":")):
                break
        if last < first:
            continue
        if min(probs[first : last + 1]) < GARBLE_MAX_PROB:
            out.append((first, last))
    return out


# "<name> calling about ...": a caller introducing themselves; the words after "calling" that
# make it a self-introduction, not "keep calling" or "calling it a day".
_CALLING_NEXT = frozenset("about from regarding re for to on back because with".split())


def find_caller_names(cores: list[str], probs: list[float], raw: list[str]) -> list[tuple[int, int]]:
    """Up to three words right before "calling about/from/..." that the ASR was unsure of or
    that are capitalised (not function words, no clause end between): the caller's name in
    "this is Siobhan calling about my order", which a telephone line turned into "I live in
    Chimon calling about my owner" - the cue before the name misheard, the one after it kept.
    """
    gz = gazetteer()
    lows = [c.lower() for c in cores]
    out: list[tuple[int, int]] = []
    for k in range(1, len(lows) - 1):
        if lows[k] != "calling" or lows[k + 1] not in _CALLING_NEXT:
            continue
        first = k
        for j in range(k - 1, max(-1, k - 4), -1):
            function_word = lows[j] in FUNCTION_WORDS and not _capitalised_inside(cores, raw, j)
            if function_word or not _nameish(cores[j]):
                break
            if j < k - 1 and raw[j].strip().endswith((".", "?", "!", ",", ";", ":")):
                break  # a clause ends before the words next to "calling"
            first = j
        if first == k:
            continue
        words = range(first, k)
        if min(probs[i] for i in words) < GARBLE_MAX_PROB or any(
            (_is_cap(cores[i]) and lows[i] not in gz.common) or _capitalised_inside(cores, raw, i)
            for i in words
        ):
            out.append((first, k - 1))
    return out


def _capitalised_inside(cores: list[str], raw: list[str], i: int) -> bool:
    """Word i is capitalised inside a sentence ("I live in May calling about ..."): a name or a
    month there, not the common word it spells ("may")."""
    return (
        i > 0 and cores[i][:1].isupper() and cores[i].isalpha() and len(cores[i]) >= 2
        and not raw[i - 1].strip().endswith((".", "?", "!"))
    )  # fmt: skip
