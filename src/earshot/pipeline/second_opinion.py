"""A second, larger ASR model where the fast one may have misheard personal data.

Every PII miss left in the measurements (docs/deid-pipeline.md) is tiny.en hearing ordinary
words where a name or address was said ("Please tell me, not if I are so derived." for "Please
tell Mei that the parcel arrived"). Where a PII cue ("tell", "my name is", "account number",
"email") is followed by words the fast ASR was unsure of that no personal data found covers, the
snippet is transcribed again by Whisper base, and what the PII detector finds in that second
transcript is silenced too. A value found only in part ("account 2563, no 25," for "two five six
three, double oh two five") leaves unsure words after the cue and is asked about too. Only such
snippets pay for the larger model (about twice tiny.en's cost); it is loaded on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from earshot.pipeline.pii import (
    DIGIT_SPAN_TYPES,
    MONTHS,
    NAME_MAX_WORDS,
    cue_ends,
    cue_form,
    digits_said,
    ends_sentence,
    number_like,
)
from earshot.pipeline.pii_names import gazetteer
from earshot.pipeline.pii_spoken import HOMOPHONES, clean, is_number_word, written_digits
from earshot.pipeline.types import Audio, PiiSpan, Transcript, Word

if TYPE_CHECKING:
    from earshot.config import Settings
    from earshot.pipeline.asr import AsrOptions, WhisperTranscriber


@dataclass(frozen=True)
class SecondOpinionOptions:
    """When a snippet is heard again; defaults from the PII evaluation (see deid-pipeline.md)."""

    unsure_prob: float = 0.7  # a word after a cue less sure than this asks for a second opinion
    window: int = 6  # words after the cue that may hold the value
    # a band-limited recording (a telephone call): every snippet with words is heard again,
    # since tiny.en mishears narrowband speech past what any cue rule can see (deid-pipeline.md)
    every_narrowband_snippet: bool = True
    # ... except one tiny.en heard every word of with at least this probability
    narrowband_sure_prob: float = 0.4


def needs_second_opinion(
    transcript: Transcript, spans: list[PiiSpan], options: SecondOpinionOptions | None = None
) -> bool:
    """True if a PII cue is followed, within the window and the sentence, by an unsure word
    that no personal data found covers, or ends the snippet (the value may be dropped).

    A word the ASR joined with hyphens counts as its last part ("Short-code," ends the cue
    "code"): tiny.en glues words it is unsure of ("6-stoubled-ine-ine,").
    """
    opts = options or SecondOpinionOptions()
    words = transcript.words
    if not words:
        return False
    lows = [cue_form(w.text) for w in words]
    covered = {i for s in spans for i in range(s.first_word, s.last_word + 1)}
    for k in cue_ends(lows):
        if k + 1 >= len(words):
            return True  # "my pin is" and nothing after it: the ASR may have dropped the value
        if ends_sentence(words[k]):
            continue
        for j in range(k + 1, min(len(words), k + 1 + opts.window)):
            if j not in covered and float(words[j].probability) < opts.unsure_prob:
                return True
            if ends_sentence(words[j]):
                break
    return False


def without_long_names(spans: list[PiiSpan]) -> list[PiiSpan]:
    """`spans` less the names of more than four words: Whisper base title-cases the speech it
    cannot make out ("Please tell, [May Petron, National Power Solar Island]" for "... Mei
    Petrov that the parcel arrived"), and a name that long is that, not a name."""
    return [s for s in spans if s.type != "NAME" or s.last_word - s.first_word < NAME_MAX_WORDS]


_DOUBTED_NAME_PROB = 0.5  # the second model heard every word of the name less sure than this
_SURE_WORD_PROB = 0.7  # ... where the first heard common words only, at least this sure (GARBLE_MAX_PROB)


def _overlapping(t: Transcript, s: PiiSpan, slack_s: float) -> list[int]:
    """Indices of `t`'s words that overlap span `s` in time by more than `slack_s` at either
    edge (Whisper's word boundaries are loose)."""
    return [
        i for i, w in enumerate(t.words)
        if w.end_s > s.start_s + slack_s and w.start_s < s.end_s - slack_s
    ]  # fmt: skip


def without_doubted_names(
    spans: list[PiiSpan], primary: Transcript, other: Transcript, slack_s: float = 0.05
) -> list[PiiSpan]:
    """`spans` (found in `other`) less the names the second model was unsure of where the first
    heard, sure, only common words that are no name: "Call me [Mac?] tomorrow" from Whisper
    base where tiny.en heard "Call me back tomorrow". The fast model's confident ordinary word
    outweighs the larger one's doubtful name. The name stays where the first model was unsure,
    heard a name or an uncommon word, or where the second was sure of any word of it."""
    gz = gazetteer()

    def sure_common(w: Word) -> bool:
        low = clean(w.text).lower()
        return w.probability >= _SURE_WORD_PROB and low in gz.common and not gz.is_name(low)

    out: list[PiiSpan] = []
    for s in spans:
        if s.type == "NAME" and s.first_word >= 0:
            said = other.words[s.first_word : s.last_word + 1]
            under = [primary.words[i] for i in _overlapping(primary, s, slack_s)]
            if (
                under
                and all(w.probability < _DOUBTED_NAME_PROB for w in said)
                and all(map(sure_common, under))
            ):
                continue
        out.append(s)
    return out


def map_onto(
    primary: Transcript, other: Transcript, spans: list[PiiSpan], slack_s: float = 0.05
) -> tuple[list[PiiSpan], list[PiiSpan]]:
    """`spans` (found in `other`, a second transcript of the same audio) as spans of
    `primary`'s words, for the reviewer's masked text, and those no primary word overlaps
    (audio only).

    A primary word the span overlaps in time is left out at the span's edges when both models
    heard it as the same ordinary word outside the personal data ("tell" in "tell [May]"):
    Whisper's word boundaries are loose, and the cue word before a value would otherwise be
    masked with it. The silenced time is the union of both timings, clipped at such agreed
    words.
    """
    words = primary.words
    heard_outside = _heard_outside(other, spans)

    def agreed(i: int) -> bool:
        return _heard_alike(words[i], heard_outside) is not None

    mapped: list[PiiSpan] = []
    audio_only: list[PiiSpan] = []
    for s in spans:
        hit = _overlapping(primary, s, slack_s)
        while hit and agreed(hit[0]):
            hit.pop(0)
        while hit and agreed(hit[-1]):
            hit.pop()
        if not hit:
            audio_only.append(PiiSpan(s.type, s.start_s, s.end_s, -1, -1))
            continue
        a, b = hit[0], hit[-1]
        start = min(s.start_s, words[a].start_s)
        end = max(s.end_s, words[b].end_s)
        if a > 0 and agreed(a - 1):
            start = max(start, words[a - 1].end_s)
        if b + 1 < len(words) and agreed(b + 1):
            end = min(end, words[b + 1].start_s)
        mapped.append(PiiSpan(s.type, start, max(start, end), a, b))
    return mapped, audio_only


def trim_agreed(
    spans: list[PiiSpan], primary: Transcript, other: Transcript, other_spans: list[PiiSpan]
) -> list[PiiSpan]:
    """`spans` of `primary` without the ordinary words at their edges that both models heard
    alike and the second transcript's detection left alone ("[Hi, this is] Gwen calling": a
    rule for unsure words swept up what both models agree was said).

    Only common words that are not numbers, digit homophones or months are dropped, never a
    span's last word, nor from the end of a value that ends in common words ("... Ashford
    Drive", "... dot com"). The silenced time is clipped at a dropped word: the earlier of
    both models' ends before the span, the later of both starts after it.
    """
    words = primary.words
    common = gazetteer().common
    outside = _heard_outside(other, other_spans)

    def match(i: int) -> Word | None:  # the other model's word for primary word i, if agreed
        core = clean(words[i].text)
        low = core.lower()
        if (
            low not in common or low in HOMOPHONES or low in MONTHS or is_number_word(low)
            or written_digits(core) is not None
        ):  # fmt: skip
            return None
        return _heard_alike(words[i], outside)

    out: list[PiiSpan] = []
    for s in spans:
        a, b = s.first_word, s.last_word
        start, end = s.start_s, s.end_s
        while a < b and (m := match(a)) is not None:
            start = max(start, min(words[a].end_s, m.end_s))
            a += 1
        while b > a and s.type not in _ENDS_IN_WORDS and (m := match(b)) is not None:
            end = min(end, max(words[b].start_s, m.start_s))
            b -= 1
        out.append(PiiSpan(s.type, start, max(start, end), a, b))
    return out


_CLIP_MIN_DIGITS = 4  # a number both models heard whole; fewer could be a house number
_CLIP_SLACK_S = 0.05


def clip_to_agreed_number(
    spans: list[PiiSpan], primary: Transcript, other: Transcript, other_spans: list[PiiSpan]
) -> list[PiiSpan]:
    """Digit spans of `primary` cut back to the number the second transcript found at the same
    time, where that number says at least as many digits (four or more): what the first span
    grew over beyond it is ordinary speech misheard ("Sword Code [9339 69 Same Grand Camp]
    Before", where Whisper base heard "9339, 69, same brand cap before"). Number words at the
    edges are kept; the silenced time still covers the other model's whole number."""
    words, others = primary.words, other.words
    out: list[PiiSpan] = []
    for s in spans:
        mine = digits_said(words, s.first_word, s.last_word) if s.type in DIGIT_SPAN_TYPES else 0
        agreed = next(
            (
                o for o in other_spans
                if o.type in DIGIT_SPAN_TYPES and o.first_word >= 0
                and o.start_s < s.end_s and s.start_s < o.end_s
                and digits_said(others, o.first_word, o.last_word) >= mine
            ),
            None,
        ) if mine >= _CLIP_MIN_DIGITS else None  # fmt: skip
        if agreed is None:
            out.append(s)
            continue
        a, b = s.first_word, s.last_word
        while b > a and words[b].start_s >= agreed.end_s - _CLIP_SLACK_S and not number_like(words[b].text):
            b -= 1
        while a < b and words[a].end_s <= agreed.start_s + _CLIP_SLACK_S and not number_like(words[a].text):
            a += 1
        start = max(s.start_s, min(words[a].start_s, agreed.start_s))
        end = min(s.end_s, max(words[b].end_s, agreed.end_s))
        out.append(PiiSpan(s.type, start, max(start, end), a, b))
    return out


def _heard_outside(other: Transcript, spans: list[PiiSpan]) -> list[tuple[str, Word]]:
    """The words of `other` outside `spans`, each with its cleaned lower-case form."""
    inside = {i for s in spans for i in range(s.first_word, s.last_word + 1)}
    return [(clean(w.text).lower(), w) for i, w in enumerate(other.words) if i not in inside]


def _heard_alike(word: Word, heard: list[tuple[str, Word]]) -> Word | None:
    """The word of `heard` (`_heard_outside`) that is `word` heard by the other model: the same
    cleaned text, its middle within 0.5 s of `word`'s."""
    low = clean(word.text).lower()
    mid = (word.start_s + word.end_s) / 2
    for t, w in heard:
        if low and t == low and abs((w.start_s + w.end_s) / 2 - mid) < 0.5:
            return w
    return None


_ENDS_IN_WORDS = ("EMAIL", "ADDRESS", "DATE_OF_BIRTH")  # values whose last words are common words
WIDENED_TYPES = ("EMAIL", "ADDRESS", "DATE_OF_BIRTH")  # values tiny.en finds in part on narrowband


def only_new(
    spans: list[PiiSpan], known: list[PiiSpan], widen: tuple[str, ...] = WIDENED_TYPES
) -> list[PiiSpan]:
    """`spans` that share no word with `known`, or are of a type in `widen`: what the second
    opinion adds where no cue put the first transcript in doubt. The first transcript's own
    spans keep their words and timings, except the many-word values tiny.en finds on
    narrowband speech only in part (an e-mail's local part, a street or a birth date misheard),
    which the second opinion widens."""
    return [
        s for s in spans
        if s.type in widen
        or not any(s.first_word <= k.last_word and k.first_word <= s.last_word for k in known)
    ]  # fmt: skip


def merge_spans(first: list[PiiSpan], second: list[PiiSpan]) -> list[PiiSpan]:
    """Both lists as one, in word order; spans sharing a word become one (the type of the one
    that starts first, the union of their words and times)."""
    out: list[PiiSpan] = []
    for s in sorted([*first, *second], key=lambda s: (s.first_word, s.last_word)):
        if out and s.first_word <= out[-1].last_word:
            p = out[-1]
            out[-1] = PiiSpan(
                p.type, min(p.start_s, s.start_s), max(p.end_s, s.end_s),
                p.first_word, max(p.last_word, s.last_word),
            )  # fmt: skip
            continue
        out.append(s)
    return out


class SecondOpinion:
    """The larger model, loaded on first use by `load` (once per process, thread-safe)."""

    def __init__(
        self,
        load: Callable[[], WhisperTranscriber],
        options: SecondOpinionOptions | None = None,
    ) -> None:
        self.options = options or SecondOpinionOptions()
        self._load = load
        self._model: WhisperTranscriber | None = None
        self._lock = threading.Lock()

    @property
    def transcriber(self) -> WhisperTranscriber:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def wanted(self, transcript: Transcript, spans: list[PiiSpan]) -> bool:
        """Whether this snippet should be heard again (`needs_second_opinion`)."""
        return needs_second_opinion(transcript, spans, self.options)

    def transcribe_batch(self, audios: Sequence[Audio]) -> list[Transcript]:
        return self.transcriber.transcribe_batch(audios)


def default_second_opinion(
    settings: Settings | None = None, asr_options: AsrOptions | None = None
) -> SecondOpinion | None:
    """Whisper base from its pinned wheels (joined and hash-checked once, loaded on first use),
    on the same threads as the first ASR; None when `settings.second_opinion` is off
    (`EARSHOT_SECOND_OPINION=false` when no settings are given). `second_opinion_telephone`:
    also every snippet of a band-limited recording. `asr_options`: its decoding (default
    `AsrOptions()`, as the first ASR's)."""
    if settings is None:
        from earshot.config import Settings

        settings = Settings()
    if not settings.second_opinion:
        return None
    threads = settings.asr_threads

    def load() -> WhisperTranscriber:
        from earshot.pipeline.asr import WhisperTranscriber
        from earshot.pipeline.asr_base import BASE_MODEL_SHA256, whisper_base_model_dir

        return WhisperTranscriber(
            whisper_base_model_dir(), expected_sha256=BASE_MODEL_SHA256, cpu_threads=threads,
            options=asr_options,
        )

    options = SecondOpinionOptions(every_narrowband_snippet=settings.second_opinion_telephone)
    return SecondOpinion(load, options)
