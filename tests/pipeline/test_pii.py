"""PII detection over ASR words: each type in spoken and written form, span mapping, masking."""

from __future__ import annotations

import pytest

from earshot.pipeline.pii import continue_numbers, cut_off_value, detect_pii, mask_transcript
from earshot.pipeline.types import PiiSpan, Transcript, Word


def tr(text: str, step: float = 0.4, dur: float = 0.3, t0: float = 1.0) -> Transcript:
    """A transcript whose words (split on spaces, faster-whisper style leading space) are
    timed at t0 + k*step .. + dur."""
    words = [Word(" " + w, t0 + k * step, t0 + k * step + dur) for k, w in enumerate(text.split())]
    return Transcript(text, words)


def masked(text: str, **kw: object) -> str:
    t = tr(text)
    return mask_transcript(t, detect_pii(t, **kw))


def types(text: str) -> list[str]:
    return [s.type for s in detect_pii(tr(text))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # phones: written, split over words, spoken digit by digit, "oh", "double"
        ("Call me on 555-0199 please.", "Call me on [PHONE] please."),
        ("My number is 555- 0199.", "My number is [PHONE]."),
        ("My number is (415) 555 2671.", "My number is [PHONE]."),
        ("My number is five five five oh one nine nine.", "My number is [PHONE]."),
        (
            "Text me on oh seven seven double nine one two three four five six.",
            "Text me on [PHONE].",
        ),
        ("Ring me on +44 20 7946 0958 tonight.", "Ring me on [PHONE] tonight."),
        ("It's 4155552671 I think.", "It's [PHONE] I think."),  # valid by phonenumbers
        ("It's 020 7946 0958 I think.", "It's [PHONE] I think."),
        ("It's 6 7 for 8 2 1.", "It's [NUMBER]."),
        ("The reference is double 4, double 4, and 9786.", "The reference is [ACCOUNT]."),
        # ASR slips inside digits said one by one
        ("Shortcode 8 number 4 number 8 8 same as before.", "Shortcode [SORT_CODE] same as before."),
        ("My social security number is free-free-zero one, one, one.", "My social security number is [SSN]."),
        ("They sent me the code for free O double 6 O.", "They sent me the code [CODE]."),
        # cards: Luhn-checked written, spoken with a cue
        ("It's 4111 1111 1111 1111 I think.", "It's [CARD] I think."),
        ("My card number is four one one one, one one one one.", "My card number is [CARD]."),
        # account / sort code / PIN / codes / SSN / passport
        ("The account number is 12345678.", "The account number is [ACCOUNT]."),
        ("Account number double four seven one two three nine.", "Account number [ACCOUNT]."),
        ("The sort code is 12-34-56.", "The sort code is [SORT_CODE]."),
        ("Sort code one two, three four, five six.", "Sort code [SORT_CODE]."),
        ("My PIN is 4 8 2 1.", "My PIN is [PIN]."),
        ("My pin is four eight two one.", "My pin is [PIN]."),
        ("The verification code is nine hundred and twelve.", "The verification code is [CODE]."),
        ("Your code is 774 301.", "Your code is [CODE]."),
        # ASR garbled the digits, but what follows "my pin is" is the PIN
        ("My pin is out in the air of 1-6.", "My pin is [PIN]."),
        ("My social security number is 123-45-6789.", "My social security number is [SSN]."),
        ("My passport number is AB 1234567.", "My passport number is [PASSPORT]."),
        ("Passport number is A B one two three four five six seven.", "Passport number is [PASSPORT]."),
        ("My national insurance number is QQ 12 34 56 C.", "My national insurance number is [SSN]."),
        # any other digit run of 3+ digits is still masked
        ("We paid 450 dollars.", "We paid [NUMBER] dollars."),
        # the ASR glued a word onto the digits: still a digit run
        ("They sent me the code 20-72-89-I'm by text.", "They sent me the code [CODE] by text."),
        ("Call 555-0199's line.", "Call [PHONE] line."),
        ("It was nine hundred pounds.", "It was [NUMBER] pounds."),
    ],
)
def test_digit_runs_spoken_and_written(text: str, expected: str) -> None:
    assert masked(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My email is jane dot doe at example dot com.", "My email is [EMAIL]."),
        ("Send it to jane.doe@example.com thanks.", "Send it to [EMAIL] thanks."),
        ("Write to j underscore smith at mail dot co dot uk please.", "Write to [EMAIL] please."),
        ("My email is jane.doe at example.com.", "My email is [EMAIL]."),
        ("Email address is jane doe at gmail dot com.", "Email address is [EMAIL]."),
        ("It's bob99@ example.org ok.", "It's [EMAIL] ok."),
        ("My email is maimandas cornellada. Thanks.", "My email is [EMAIL]. Thanks."),
        ("You can write to me at the meatry not petra me not look not come anytime.",
         "You can write to me at [EMAIL] anytime."),
        ("My email is tariq or out at example .com thanks.", "My email is [EMAIL] thanks."),
        # how the ASR writes a spoken address it did not understand as one
        ("You can write to me at quin .goat email .com anytime.", "You can write to me at [EMAIL] anytime."),
        ("My email is www .ingrid .co .co.", "My email is [EMAIL]."),
        ("Send the details to kwen.goatemail.com please.", "Send the details to [EMAIL] please."),
        # glued with hyphens, "not" for "dot" (tiny.en, seed 8)
        ("You can write to me at rah-m-t-not-more-out-look-not-com anytime.",
         "You can write to me at [EMAIL] anytime."),
        ("You can write to me at half-past-ten anytime.", "You can write to me at half-past-ten anytime."),
        # "underscore" heard as two words, the rest misheard, a lone ".com" at the end
        ("Send the details to, look under score, ran an example .com. Please.",
         "Send the details to, [EMAIL]. Please."),
    ],
)
def test_emails_spoken_and_written(text: str, expected: str) -> None:
    assert masked(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My name is Jane Doe.", "My name is [NAME]."),
        ("my name is priya sharma and I need help.", "my name is [NAME] and I need help."),
        ("Hi, this is Priya from the bank.", "Hi, this is [NAME] from the bank."),
        ("Please ask for Mr. Okonkwo.", "Please ask for Mr. [NAME]."),
        ("I spoke to Maria Garcia yesterday.", "I spoke to [NAME] yesterday."),
        ("Can you call Siobhan tomorrow?", "Can you call [NAME] tomorrow?"),
        ("Text Ahmed when you land.", "Text [NAME] when you land."),
        ("Dr. Patel said it was fine.", "Dr. [NAME] said it was fine."),
        ("Yesterday Robert came round.", "Yesterday [NAME] came round."),
        ("I was talking with Maynouyan yesterday.", "I was talking with [NAME] yesterday."),
        ("Jane and Olusegun came.", "[NAME] and [NAME] came."),
    ],
)
def test_names_by_context_and_gazetteer(text: str, expected: str) -> None:
    assert masked(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I live at 42 Oak Street, Springfield.", "I live at [ADDRESS]"),
        ("Send it to 1600 Pennsylvania Ave NW, Washington, DC 20500.", "Send it to [ADDRESS]"),
        ("It's 221B Baker Street.", "It's [ADDRESS]"),
        ("My address is forty two Elm Road.", "My address is [ADDRESS]"),
        ("The postcode is SW1A 1AA.", "The postcode is [ADDRESS]"),
        ("I live at 76 to live a road.", "I live at [ADDRESS]"),
    ],
)
def test_street_addresses(text: str, expected: str) -> None:
    assert masked(text).startswith(expected)
    assert "ADDRESS" in types(text)


@pytest.mark.parametrize(
    "text",
    [
        "I was born on March third, nineteen eighty five.",
        "My date of birth is 03/04/1985.",
        "Date of birth: the fifth of June 1990.",
        "My birthday is twenty first of July.",
        "My date on birth is the 11th of September 1958.",
    ],
)
def test_date_of_birth(text: str) -> None:
    assert "DATE_OF_BIRTH" in types(text)
    out = masked(text)
    for token in ("1985", "eighty", "1990", "June", "July", "03/04/1985"):
        assert token not in out


@pytest.mark.parametrize(
    "text",
    [
        "I have two dogs.",
        "Call me back tomorrow.",
        "Will you come at 3:30?",
        "May I help you?",
        "Oh, I see, okay.",
        "It's about a hundred miles from here.",
        "I need one or two things from the shop.",
        "Can you turn the volume up to eleven?",
        "Set a timer for twenty minutes.",
        "This is great, thank you so much.",
        "What's the weather like in London today?",
        "I'm fine, just a bit tired.",
        "Play the next song please.",
        "The meeting is at ten thirty on Monday.",
        "The meeting starts at 10.30 on Monday.",
        "The meeting starts at 1030 on Monday.",
        "The meeting starts at 10 30 on Monday.",
        "My email is not working again.",
        "Send the details to the office at noon.",
        "You can write to me at any time.",
        "I'll email it to you at home.",
        "My pin is the same as before.",
        "My phone number is on the form, thanks.",
        "I have 2 to 3 dogs.",
        "I have 2 cats and 3 dogs.",
        "It was free to enter.",
        "We had a one-to-one meeting.",
        "It costs 3.50 today.",
        "I read it on bbc.co.uk yesterday.",
        "We flew to Spain and Portugal with British Airways.",
        "I paid with Visa and bought it from Tesco.",
    ],
)
def test_no_false_positives_on_ordinary_sentences(text: str) -> None:
    assert detect_pii(tr(text)) == []
    assert masked(text) == text


def test_name_the_asr_could_not_spell_is_masked_by_confidence() -> None:
    def with_probs(pairs: list[tuple[str, float]]) -> Transcript:
        return Transcript("", [Word(w, k * 0.3, k * 0.3 + 0.2, p) for k, (w, p) in enumerate(pairs)])

    t = with_probs([("Could", 0.9), ("you", 0.99), ("ask", 0.9), ("for", 0.9), ("no", 0.9),
                    ("feel", 0.62), ("at", 0.15), ("the", 0.98), ("front", 1.0), ("desk?", 0.7)])
    # "at" (p=0.15) is absorbed too: an unsure word next to PII is most likely more of it
    assert mask_transcript(t, detect_pii(t)) == "Could you ask for [NAME] the front desk?"
    t = with_probs([("Please", 0.7), ("tell", 0.5), ("when", 0.19), ("they'll", 0.44),
                    ("go", 0.52), ("back", 0.19), ("to", 0.91), ("the", 0.96), ("parcel", 0.8)])
    assert mask_transcript(t, detect_pii(t)) == "Please tell [NAME] to the parcel"
    t = with_probs([("Could", 0.6), ("you", 0.98), ("ask", 0.95), ("for", 0.93), ("a", 0.95),
                    ("refund", 0.98), ("on", 0.98), ("my", 0.97), ("order?", 0.77)])
    assert detect_pii(t) == []


def test_caller_name_before_calling_about_is_masked_when_the_cue_was_misheard() -> None:
    # "Hi, this is Siobhan calling about my order" through a telephone line
    t = _with_probs([("I", 0.62), ("live", 0.71), ("in", 0.98), ("Chimon", 0.4), ("calling", 0.89),
                     ("about", 0.4), ("my", 0.98), ("owner.", 0.45)])
    assert mask_transcript(t, detect_pii(t)) == "I live in [NAME] calling about my owner."
    # "Hi, this is Ingrid Nguyen calling about my order": the name heard as a place, with commas
    t = _with_probs([("I", 0.58), ("live", 0.67), ("in,", 0.99), ("in", 0.64), ("Britain,", 0.51),
                     ("calling", 0.43), ("about", 0.68), ("my", 0.99), ("order.", 0.85)])
    assert mask_transcript(t, detect_pii(t)) == "I live in, in [NAME], calling about my order."


def test_a_greeting_before_this_is_leaves_the_name_cue_to_find_the_name() -> None:
    # "Hi, this is Kwame calling about my order" through a telephone line: the name alone is
    # masked, not "this is" after the greeting cue, nor the "calling" after the name
    t = _with_probs([("Hi,", 0.35), ("this", 0.52), ("is", 0.99), ("Gwen", 0.51), ("calling", 0.77),
                     ("him", 0.53), ("out", 0.98), ("my", 0.93), ("order.", 0.91)])
    assert mask_transcript(t, detect_pii(t)) == "Hi, this is [NAME] calling him out my order."


def test_unsure_words_before_a_number_do_not_take_its_cue_with_them() -> None:
    # "Sort code nine three three nine, six nine" through a telephone line: growing back over
    # the unsure words stops at the cue "Code"; a word that is only part of a longer cue
    # ("National" of "national insurance") does not stop it
    t = _with_probs([("Sword", 0.15), ("Code", 0.26), ("9339", 0.32), ("69", 0.49), ("Same", 0.7)])
    assert mask_transcript(t, detect_pii(t)) == "Sword Code [CODE] Same"
    t = _with_probs([("It", 0.9), ("was", 0.9), ("National", 0.35), ("2-928.", 0.12)])
    assert mask_transcript(t, detect_pii(t)) == "It was [NUMBER]."


def test_a_spelled_address_is_found_from_its_end_when_its_cue_was_misheard() -> None:
    # "You can write to me at dmitri dot nguyen at outlook dot com any time" by telephone
    t = _with_probs([("You", 0.38), ("can", 0.95), ("rise", 0.86), ("to", 0.43), ("me,", 0.95),
                     ("the", 0.34), ("me", 0.13), ("three", 0.32), ("not", 0.47), ("new", 0.47),
                     ("yet", 0.34), ("outlook", 0.35), ("not", 0.25), ("calm", 0.36),
                     ("anytime", 0.54)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "You can rise to me, [EMAIL] anytime"
    # "Send the details to nadia dot petrov at outlook dot com please": "to" heard as "too."
    t = _with_probs([("And", 0.18), ("the", 0.26), ("details", 0.66), ("too.", 0.41), ("Now", 0.52),
                     ("you're", 0.9), ("not", 1.0), ("better", 0.2), ("on", 0.28), ("an", 0.4),
                     ("outlook", 0.94), ("not", 0.37), ("come,", 0.42), ("please.", 0.96)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "And the details too. [EMAIL], please."
    # a written ending is enough with two signals
    t = _with_probs([("You", 0.4), ("can", 0.97), ("rise", 0.92), ("to", 0.66), ("me,", 0.94),
                     ("K.", 0.15), ("Commander,", 0.17), ("Corvett", 0.17), ("from", 0.2),
                     ("an", 0.29), ("nmemple", 0.17), (".com", 0.91), ("anytime.", 0.58)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "You can rise to me, [EMAIL] anytime."


def test_an_address_ending_looks_past_a_context_word_that_is_part_of_it() -> None:
    # "gmail dot com" heard as "email .com": the nearest context word is the address's host
    t = _with_probs([("and", 0.29), ("the", 0.64), ("details,", 0.79), ("do", 0.29), ("the", 0.21),
                     ("metronaut", 0.38), ("and", 0.64), ("you", 0.23), ("will", 0.98), ("have", 0.29),
                     ("to", 0.79), ("email", 0.77), (".com,", 0.61), ("please", 0.94)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "and the details, [EMAIL], please"
    # "You can write to me at zofia dot lindqvist at gmail dot com any time": "email." is "gmail"
    t = _with_probs([("You", 0.57), ("can", 0.95), ("write,", 0.67), ("Tomiat,", 0.15), ("no,", 0.2),
                     ("be", 0.13), ("not", 0.91), ("linked", 0.24), ("with", 0.95), ("that", 0.13),
                     ("email.", 0.49), ("Not", 0.25), ("come,", 0.59), ("anytime.", 0.64)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "You can write, [EMAIL], anytime."


def test_a_value_goes_on_through_the_asr_looping_on_one_word() -> None:
    # "My email is tariq underscore delgado at example dot com": tiny.en loops on "no"
    t = _with_probs([("my", 0.14), ("email", 0.49), ("is", 0.64), ("tariqunder", 0.24), ("corle", 0.11),
                     *[("no", 0.7)] * 15])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "my email is [EMAIL]"
    # two repeats are speech ("no, no"), not a loop: the span stays where it was
    t = _with_probs([("My", 0.9), ("pin", 0.9), ("is", 0.9), ("4821", 0.9), ("4821", 0.9),
                     ("thanks", 0.9), ("thanks", 0.9)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "My pin is [PIN] thanks thanks"


@pytest.mark.parametrize(
    "text",
    [
        "He said he would write to me but he did not come.",
        "I sent the details but the engineer did not come.",
        "Email me when the parcel has not come by Friday.",
    ],
)
def test_did_not_come_is_not_an_address_ending(text: str) -> None:
    t = _with_probs([(w, 0.9) for w in text.split()])
    assert detect_pii(t) == []


def test_a_capitalised_common_word_before_calling_about_is_a_name() -> None:
    # "Hi, this is Mei calling about my order" by telephone: both models heard "May"
    t = _with_probs([("I", 0.52), ("live", 0.65), ("in", 0.99), ("May", 0.75), ("calling", 0.78),
                     ("about", 0.62), ("my", 0.97), ("order.", 0.85)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "I live in [NAME] calling about my order."


def test_a_cue_that_ends_the_snippet_silences_the_rest_of_it() -> None:
    # "My name is Esther." by telephone: both models dropped the name
    t = _with_probs([("My", 0.35), ("name", 0.99), ("is", 0.94)])  # words end at 0.8 s
    assert cut_off_value(t, 1.35) == [PiiSpan("UNTRANSCRIBED", pytest.approx(0.8), 1.35, -1, -1)]
    # a finished sentence, a cue that is not last, or nothing left: nothing to silence
    assert cut_off_value(_with_probs([("My", 0.9), ("name", 0.9), ("is.", 0.9)]), 1.35) == []
    assert cut_off_value(_with_probs([("My", 0.9), ("name", 0.9), ("is", 0.9), ("Jo", 0.9)]), 2) == []
    assert cut_off_value(t, 0.8) == []
    assert cut_off_value(Transcript("", []), 1.0) == []


def test_digit_sound_alikes_next_to_a_number_join_it_after_detection() -> None:
    # "the sort code is seven four eight eight, five three" by telephone: "time free."
    t = _with_probs([("The", 0.2), ("Thorc", 0.06), ("Covid,", 0.51), ("748,", 0.24),
                     ("time", 0.48), ("free.", 0.63)])  # fmt: skip
    spans = continue_numbers(t, detect_pii(t))
    assert mask_transcript(t, spans) == "The Thorc Covid, [NUMBER]."
    # "sort code five two eight double two one": "I'm" for "five"; a sure "I'm", and one past a
    # full stop, stay
    t = _with_probs([("Sword", 0.19), ("Code,", 0.21), ("I'm", 0.47), ("28-1-2-1,", 0.25),
                     ("same", 0.8), ("branch", 0.79)])  # fmt: skip
    assert mask_transcript(t, continue_numbers(t, detect_pii(t))) == "Sword Code, [CODE], same branch"
    t = _with_probs([("I'm", 0.9), ("555", 0.5), ("0199.", 0.5), ("Fine", 0.6)])
    assert mask_transcript(t, continue_numbers(t, detect_pii(t))) == "I'm [PHONE]. Fine"
    # names and other types do not grow; spans with no words are left as they are
    t = _with_probs([("Call", 0.9), ("Anna", 0.9), ("to", 0.3)])
    assert continue_numbers(t, detect_pii(t)) == detect_pii(t)
    audio_only = [PiiSpan("PHONE", 0.0, 1.0, -1, -1)]
    assert continue_numbers(t, audio_only) == audio_only


def test_a_digit_span_carries_on_over_the_rest_of_a_broken_up_number() -> None:
    # "my phone number is zero seven eight zero, nine six seven one, zero three nine" by telephone
    t = _with_probs([("My", 0.59), ("phone", 0.93), ("number", 0.67), ("in", 0.46), ("near-o-1080,", 0.08),
                     ("I'm", 0.6), ("Big", 0.25), ("Sanmon", 0.19), ("1,", 0.52), ("near-o-free", 0.62),
                     ("I'm", 0.69)])  # fmt: skip
    before = detect_pii(t)
    assert mask_transcript(t, before) == "My phone number in [NUMBER], I'm Big Sanmon 1, near-o-free I'm"
    assert mask_transcript(t, continue_numbers(t, before)) == "My phone number in [NUMBER]"
    # "my pin is 6298": "6102. I am 28." -- a number two unsure words on, past Whisper's full stop
    t = _with_probs([("My", 0.4), ("opinion,", 0.3), ("6102.", 0.4), ("I", 0.3), ("am", 0.4), ("28.", 0.3)])
    spans = [PiiSpan("NUMBER", 0.0, 1.0, 2, 2)]
    assert mask_transcript(t, continue_numbers(t, spans)) == "My opinion, [NUMBER]."
    # "the twenty seventh of September 1948": back over a digit-like word, never an ordinal
    t = _with_probs([("not", 0.3), ("27,", 0.5), ("some", 0.3), ("September", 0.5), ("1948.", 0.5)])
    spans = [PiiSpan("NUMBER", 0.0, 1.0, 3, 4)]
    assert mask_transcript(t, continue_numbers(t, spans)) == "not [NUMBER]."
    t = _with_probs([("The", 0.3), ("fourth", 0.5), ("748.", 0.5)])  # "the sort code ..."
    spans = [PiiSpan("NUMBER", 0.0, 1.0, 2, 2)]
    assert mask_transcript(t, continue_numbers(t, spans)) == "The fourth [NUMBER]."


def test_a_number_carries_on_only_over_unsure_words_and_not_over_cues_or_ordinary_speech() -> None:
    spans = [PiiSpan("PHONE", 0.0, 1.0, 0, 0)]
    # a sure word, a sure number after the gap, or a plain word: ordinary speech
    for words in (
        [("07700900123", 0.5), ("time", 0.9)],
        [("07700900123", 0.5), ("after", 0.5), ("six", 0.9)],
        [("07700900123", 0.5), ("next", 0.5), ("to", 0.5), ("the", 0.5)],
        [("07700900123.", 0.5), ("Five", 0.9)],  # a sure word after the full stop: a new sentence
    ):
        t = _with_probs(words)
        assert continue_numbers(t, spans) == spans, words
    # never back over the cue that says a value follows, nor across a sentence end
    t = _with_probs([("code", 0.3), ("for", 0.3), ("07700900123", 0.5)])
    assert mask_transcript(t, continue_numbers(t, [PiiSpan("CODE", 0.0, 1.0, 2, 2)])) == "code [CODE]"
    t = _with_probs([("code", 0.9), ("two.", 0.3), ("07700900123", 0.5)])
    assert mask_transcript(t, continue_numbers(t, [PiiSpan("CODE", 0.0, 1.0, 2, 2)])) == "code two. [CODE]"
    # names do not carry on
    t = _with_probs([("Anna", 0.5), ("two", 0.3)])
    name = [PiiSpan("NAME", 0.0, 1.0, 0, 0)]
    assert continue_numbers(t, name) == name


def test_a_digit_span_reaches_back_to_its_cue_over_misheard_first_digits() -> None:
    # "my social security number is nine two seven zero, three two two eight, zero" by telephone
    t = _with_probs([("My", 0.4), ("social", 0.9), ("security", 0.9), ("number", 0.9), ("in", 0.4),
                     ("9", 0.4), ("to", 0.3), ("M", 0.5), ("and", 0.45), ("0,", 0.6), ("3", 0.7),
                     ("to", 0.3), ("2", 0.6), ("8,", 0.4), ("0.", 0.4)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "My social security number in [SSN]."
    # no digit between the cue and the span, a sure word there, or a full stop: left as it was
    for between in ([("M", 0.5), ("and", 0.4)], [("9", 0.4), ("tomorrow", 0.95)], [("9.", 0.4)]):
        t = _with_probs([("My", 0.9), ("account", 0.9), ("is", 0.9), *between, ("0", 0.6), ("3", 0.7),
                         ("2", 0.6), ("8.", 0.8)])  # fmt: skip
        assert mask_transcript(t, detect_pii(t)).endswith(" [ACCOUNT]."), between


def test_calling_about_without_a_caller_name_is_left_alone() -> None:
    for words in (
        [("Hi,", 0.9), ("I'm", 0.9), ("calling", 0.9), ("about", 0.9), ("my", 0.9), ("order.", 0.9)],
        [("I'm", 0.9), ("calling", 0.9), ("about", 0.9), ("my", 0.9), ("order.", 0.9)],
        [("We", 0.9), ("keep", 0.9), ("calling", 0.9), ("about", 0.9), ("the", 0.9), ("refund.", 0.9)],
        [("The", 0.9), ("bank", 0.9), ("calling", 0.9), ("about", 0.9), ("fraud.", 0.9)],
        [("Stop", 0.5), ("calling", 0.9), ("me.", 0.9)],  # no "about/from/...": not an introduction
    ):
        t = _with_probs(words)
        assert detect_pii(t) == [], words


def test_a_name_grows_over_unsure_words_to_four_words_at_most() -> None:
    # "I was talking with Jane Harrington yesterday about the trip" as Whisper base heard it
    t = _with_probs([("I", 0.84), ("want", 0.94), ("talking", 0.57), ("with", 0.97), ("Jane", 0.82),
                     ("Harrington,", 0.67), ("yes,", 0.23), ("the", 0.3), ("main", 0.26), ("mountain", 0.33),
                     ("trip.", 0.4)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "I want talking with [NAME] main mountain trip."
    # backward growth is kept before forward growth; a name found longer is not cut
    t = _with_probs([("Please", 0.9), ("tell", 0.9), ("Anna", 0.3), ("Maria", 0.3), ("Lopez", 0.3),
                     ("Garcia", 0.3), ("Ruiz", 0.3), ("now.", 0.9)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "Please tell [NAME] now."


def test_a_digit_span_grows_over_two_unsure_words_and_a_name_over_three() -> None:
    # "sort code four two double oh two one, same branch as before" by telephone
    t = _with_probs([("Sword", 0.3), ("Code", 0.3), ("4-2-9-0-2-1", 0.3), ("Game", 0.3), ("branch", 0.3),
                     ("before", 0.3)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "Sword Code [CODE] before"
    t = _with_probs([("My", 0.9), ("name", 0.9), ("is", 0.9), ("Jo", 0.9), ("Ann", 0.3), ("Lee", 0.3),
                     ("Fox", 0.3), ("today.", 0.9)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "My name is [NAME] today."


def test_spans_absorb_adjacent_unsure_words() -> None:
    pairs = [("My", 0.5), ("social", 0.9), ("security", 0.99), ("number", 0.9), ("is", 0.98),
             ("5", 0.34), ("double", 0.16), ("2", 0.5), ("2", 0.3), ("8", 0.74), ("toxic", 0.08),
             ("stubble", 0.4), ("iron.", 0.3), ("Thanks", 0.2)]
    t = Transcript("", [Word(w, k * 0.3, k * 0.3 + 0.2, p) for k, (w, p) in enumerate(pairs)])
    # "stubble" is at the threshold (not unsure) so growth stops before it
    assert mask_transcript(t, detect_pii(t)) == "My social security number is [SSN] stubble iron. Thanks"


def test_digit_span_reaches_a_stray_digit_across_unsure_words() -> None:
    # "seven seven zero five, nine six one six" as the ASR heard it
    t = _with_probs([("to", 0.07), ("a", 0.26), ("seven", 0.48), ("year", 0.59), ("old", 0.4),
                     ("five", 0.46), ("nine", 0.73), ("six", 0.43), ("one", 0.78), ("six", 0.84)])
    assert mask_transcript(t, detect_pii(t)) == "[NUMBER]"
    # the same number as the pipeline's snippet ASR heard it: "by" is absorbed first
    t = _with_probs([("to", 0.07), ("7", 0.22), ("year", 0.32), ("old", 0.55), ("by", 0.19),
                     ("9,", 0.22), ("6,", 0.53), ("1,", 0.68), ("6.", 0.45)])
    assert mask_transcript(t, detect_pii(t)) == "[NUMBER]."
    # after the run too
    t = _with_probs([("Code", 0.9), ("is", 0.9), ("4", 0.9), ("4", 0.9), ("1", 0.9), ("on", 0.5),
                     ("eight", 0.6), ("thanks", 0.9)])
    assert mask_transcript(t, detect_pii(t)) == "Code is [CODE] thanks"


def test_number_broken_up_by_misheard_words_after_a_cue_is_masked() -> None:
    # telephone-band speech: "the verification code is six seven zero four, seven eight"
    t = _with_probs([("The", 0.1), ("Merification", 0.49), ("Code", 0.63), ("in", 0.8), ("6th", 0.37),
                     ("and", 0.44), ("1", 0.27), ("nearo", 0.17), ("4th", 0.52), ("and", 0.5),
                     ("1", 0.87), ("8th", 0.61)])
    assert mask_transcript(t, detect_pii(t)) == "The Merification Code in [CODE]"
    # "transfer it to account nine nine four seven, one nine six five today"
    t = _with_probs([("Transfer", 0.74), ("it", 0.3), ("to", 0.97), ("account,", 0.94), ("I'm", 0.58),
                     ("for", 0.21), ("them,", 0.17), ("and", 0.53), ("well", 0.34), ("I'm", 0.75),
                     ("6", 0.47), ("'5'", 0.6), ("to", 0.87), ("me.", 0.42)])
    assert mask_transcript(t, detect_pii(t)) == "Transfer it to account, [ACCOUNT] me."
    # "my pin is five two two two" as Whisper base heard it through the telephone channel
    t = _with_probs([("my", 0.8), ("pin", 0.7), ("in,", 0.5), ("I'm", 0.6), ("too", 0.4), ("too", 0.5),
                     ("too.", 0.4)])
    assert mask_transcript(t, detect_pii(t)) == "my pin in, [PIN]."  # "in": the line's "is"
    assert mask_transcript(t, continue_numbers(t, detect_pii(t))) == "my pin in, [PIN]."
    # "my pin is six three double seven" as tiny.en heard it through the telephone channel
    t = _with_probs([("My", 0.3), ("opinion,", 0.4), ("6", 0.45), ("free", 0.5), ("double-ten", 0.2),
                     ("run.", 0.3)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "My opinion, [PIN]."
    # digits inside words the ASR glued with hyphens: "code is five double nine five, oh eight"
    t = _with_probs([("The", 0.16), ("mareification", 0.14), ("code", 0.8), ("in", 0.5),
                     ("5-level", 0.14), ("high-five,", 0.09), ("8.", 0.35)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "The mareification code in [CODE]."
    # the linking "was" after the cue stays readable, even when unsure
    t = _with_probs([("The", 0.9), ("account", 0.9), ("was", 0.5), ("I'm", 0.5), ("for", 0.3),
                     ("them", 0.2), ("6", 0.4), ("to", 0.5), ("me.", 0.5)])
    assert mask_transcript(t, detect_pii(t)) == "The account was [ACCOUNT] me."


def test_numbers_said_with_confidence_after_a_cue_are_not_a_broken_number() -> None:
    # the same shape said clearly is ordinary speech: no cue-led masking
    t = _with_probs([("My", 0.9), ("account", 0.9), ("was", 0.9), ("closed", 0.9), ("two", 0.9),
                     ("or", 0.9), ("three", 0.9), ("weeks", 0.9), ("ago", 0.9), ("on", 0.9),
                     ("the", 0.9), ("4th.", 0.9)])
    assert detect_pii(t) == []
    # unsure words but fewer than three digits: not a number either
    t = _with_probs([("The", 0.9), ("account", 0.9), ("took", 0.5), ("two", 0.4), ("or", 0.3),
                     ("three", 0.4), ("days.", 0.9)])
    assert detect_pii(t) == []
    # an opinion, with a number or two in it, is ordinary speech
    t = _with_probs([("In", 0.9), ("my", 0.9), ("opinion,", 0.9), ("two", 0.5), ("weeks", 0.4),
                     ("is", 0.5), ("too", 0.4), ("long.", 0.9)])  # fmt: skip
    assert detect_pii(t) == []
    # a cue that ends a sentence, followed by a sure new sentence: nothing
    t = _with_probs([("Check", 0.9), ("the", 0.9), ("code.", 0.9), ("We", 0.9), ("have", 0.5),
                     ("2", 0.5), ("cats", 0.3), ("and", 0.4), ("1", 0.3), ("dog", 0.4), ("or", 0.4),
                     ("2.", 0.4)])
    assert detect_pii(t) == []


def test_number_broken_up_with_no_cue_left_is_masked() -> None:
    # tiny.en through the telephone channel, cue misheard: "My pin is eight five six five"
    t = _with_probs([("My", 0.14), ("goodness,", 0.31), ("8", 0.3), ("times", 0.22), ("6", 0.56),
                     ("times.", 0.95)])
    assert mask_transcript(t, detect_pii(t)) == "My goodness, [NUMBER]."
    # "Sort code 96-26-54, same branch as before": other words between the digits
    t = _with_probs([("Orteco,", 0.16), ("90", 0.55), ("big,", 0.44), ("20", 0.08), ("big,", 0.97),
                     ("Smash,", 0.13), ("54,", 0.25), ("Fame,", 0.09), ("Rancand", 0.11), ("before.", 0.64)])
    assert mask_transcript(t, detect_pii(t)) == "Orteco, [NUMBER], Fame, Rancand before."


def test_ordinary_numbers_without_a_cue_are_not_a_broken_number() -> None:
    # the same words heard with confidence: ordinary speech
    t = _with_probs([("My", 0.9), ("goodness,", 0.9), ("8", 0.9), ("times", 0.9), ("6", 0.9),
                     ("times.", 0.95)])
    assert detect_pii(t) == []
    # a clock time, unsure: two number words are not a misheard number
    t = _with_probs([("The", 0.55), ("meeting", 0.4), ("starts", 0.84), ("at", 0.9), ("10", 0.82),
                     ("30", 0.23), ("on", 0.72), ("Monday.", 0.97)])
    assert detect_pii(t) == []
    # sound-alikes with one number among them: not enough numbers
    t = _with_probs([("I'm", 0.3), ("fine,", 0.3), ("I", 0.3), ("had", 0.3), ("two", 0.3), ("to", 0.3),
                     ("go.", 0.3)])
    assert detect_pii(t) == []
    # digit-like words too far apart (three other words between): two short numbers
    t = _with_probs([("I", 0.3), ("paid", 0.3), ("5", 0.3), ("pounds", 0.3), ("for", 0.3), ("the", 0.3),
                     ("bus", 0.3), ("and", 0.3), ("the", 0.3), ("train", 0.3), ("was", 0.3), ("7", 0.3)])
    assert detect_pii(t) == []


def test_a_day_and_year_run_takes_the_month_with_it() -> None:
    # tiny.en wrote "March 15, 1948." for "March fifteenth, 1948": the run is "15, 1948"
    assert masked("My date of birth is March 15, 1948.") == "My date of birth is [DATE_OF_BIRTH]."
    # the cue misheard: still the whole date, not "March [NUMBER]"
    assert masked("My date on work is March 15, 1948.") == "My date on work is [NUMBER]."
    # a run that is not a day before the year keeps the month word
    assert "March" in masked("In March 555 1948 people came.")


def test_digit_span_does_not_reach_a_number_word_said_with_confidence() -> None:
    # sure words between, a sentence end between, or a stray number too far away: not the number
    t = _with_probs([("I", 0.9), ("have", 0.9), ("two", 0.9), ("kids", 0.95), ("and", 0.9),
                     ("five", 0.9), ("five", 0.9), ("five", 0.9)])
    assert mask_transcript(t, detect_pii(t)) == "I have two kids and [NUMBER]"
    t = _with_probs([("Two", 0.5), ("yes", 0.5), ("please.", 0.5), ("Five", 0.9), ("five", 0.9),
                     ("five", 0.9)])
    assert mask_transcript(t, detect_pii(t)) == "Two yes please. [NUMBER]"
    t = _with_probs([("seven", 0.5), ("a", 0.3), ("b", 0.3), ("c", 0.3), ("d", 0.3), ("e", 0.3),
                     ("five", 0.9), ("five", 0.9), ("five", 0.9)])
    assert mask_transcript(t, detect_pii(t)).startswith("seven")


def test_homophones_and_misheard_digits_next_to_double() -> None:
    # "three one double three nine double eight one" and "six three double nine double eight"
    t = _with_probs([("My", 0.42), ("count", 0.64), ("number", 0.88), ("is", 0.96), ("free", 0.23),
                     ("one", 0.41), ("double", 0.84), ("free", 0.46), ("nine", 0.32),
                     ("double", 0.85), ("eight", 0.88), ("one", 0.92)])
    assert mask_transcript(t, detect_pii(t)) == "My count number is [PHONE]"  # 8 digits, "number is"
    t = _with_probs([("Cold", 0.9), ("6", 0.68), ("free", 0.28), ("double", 0.94), ("high", 0.2),
                     ("double", 0.78), ("8.", 0.44)])
    assert mask_transcript(t, detect_pii(t)) == "Cold [NUMBER]."
    # without digits around it, "double" and a homophone are ordinary words
    assert masked("I paid double for free delivery.") == "I paid double for free delivery."


def test_personal_data_runs_on_to_the_address_ending_after_it() -> None:
    # "my email is dmitri underscore sandoval at example dot com" by telephone (tiny.en)
    t = _with_probs([("My", 0.13), ("email", 0.94), ("is", 0.98), ("number", 0.06), ("three", 0.11),
                     ("under", 0.42), ("core", 0.42), ("and", 0.54), ("you", 0.23), ("will", 0.98),
                     ("have", 0.9), ("an", 0.4), ("ample", 0.71), (".com", 0.62)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "My email is [EMAIL]"
    # "send the details to mateo dot nguyen at outlook dot com please": a name, then "not com"
    t = _with_probs([("Then,", 0.12), ("money", 0.21), ("failed", 0.43), ("to,", 0.57), ("Mateo,", 0.59),
                     ("not", 0.81), ("to", 0.16), ("get", 0.67), ("a", 0.8), ("cow,", 0.11), ("look,", 0.52),
                     ("not", 0.86), ("com,", 0.61), ("clean.", 0.71)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "Then, money failed to, [EMAIL], clean."
    # "... at ingrid dot tanaka at outlook dot com any time" (Whisper base): the address goes on
    t = _with_probs([("You", 0.47), ("can", 0.99), ("write", 0.97), ("to", 0.82), ("me", 0.98), ("at", 0.86),
                     ("www", 0.04), (".ingred", 0.63), (".net", 0.24), ("and", 0.23), ("I", 0.16),
                     ("cannot", 0.54), ("look", 0.95), ("not", 0.97), ("calm", 0.83), ("anytime.", 0.49)])
    assert mask_transcript(t, detect_pii(t)) == "You can write to me at [EMAIL] anytime."


@pytest.mark.parametrize(
    "words",
    [
        # a name, then "not calm" (which says no domain) with no address cue
        [("Tell", 0.9), ("Anna", 0.9), ("I'm", 0.5), ("not", 0.6), ("calm", 0.5)],
        # the sentence ended for sure between them
        [("Call", 0.9), ("Anna.", 0.9), ("It", 0.5), ("is", 0.6), ("not", 0.5), ("com", 0.5)],
        # a number with no address cue before "not calm"
        [("My", 0.9), ("pin", 0.9), ("is", 0.9), ("4412", 0.6), ("and", 0.5), ("I", 0.5), ("am", 0.5),
         ("not", 0.5), ("calm", 0.5)],
        # more than eight words on
        [("Call", 0.9), ("Anna", 0.9), *[("and", 0.9)] * 8, ("dot", 0.5), ("com", 0.5)],
    ],
)
def test_an_address_ending_far_off_or_past_a_sentence_is_left_alone(words: list[tuple[str, float]]) -> None:
    t = _with_probs(words)
    assert all(s.type != "EMAIL" for s in detect_pii(t)), mask_transcript(t, detect_pii(t))


def test_spoken_address_heard_as_full_stops_or_a_lone_suffix() -> None:
    # "kwame dot delgado at gmail dot com": the dots written as full stops
    t = _with_probs([("Send", 0.21), ("the", 0.83), ("details", 0.99), ("to,", 0.88),
                     ("claim.", 0.27), (".", 0.06), (".", 0.84), (".", 0.68), (".", 0.54)])
    assert mask_transcript(t, detect_pii(t)).startswith("Send the details to, [EMAIL]")
    # "jane underscore sandoval at example dot com": only ".com" is left of the address
    t = _with_probs([("Send", 0.63), ("the", 0.83), ("details", 0.94), ("to", 0.97), ("J.", 0.3),
                     ("under", 0.06), ("the", 0.06), ("course", 0.71), ("and", 0.89), ("do", 0.18),
                     ("volatig", 0.45), ("nampl", 0.36), (".com.", 0.98), ("Please.", 0.96)])
    assert mask_transcript(t, detect_pii(t)) == "Send the details to [EMAIL]. Please."
    # the address ends at its suffix: what follows is not swallowed
    t = tr("My email is jane.doe@example.com and my number is 555 0199.")
    assert [s.type for s in detect_pii(t)] == ["EMAIL", "PHONE"]


def test_full_date_masked_with_its_year() -> None:
    assert masked("On the 23rd of November, 1977 it rained.") == "On [NUMBER] it rained."


def test_span_maps_to_words_and_their_timings() -> None:
    t = tr("my number is five five five one two thanks", step=0.5, dur=0.2, t0=2.0)
    spans = detect_pii(t)
    assert len(spans) == 1
    s = spans[0]
    assert (s.type, s.first_word, s.last_word) == ("NUMBER", 3, 7) or s.type == "PHONE"
    assert s.first_word == 3 and s.last_word == 7
    # from the end of the word before to the start of the word after: the gaps are covered
    assert s.start_s == pytest.approx(t.words[2].end_s)
    assert s.end_s == pytest.approx(t.words[8].start_s)
    assert t.words[3].start_s - s.start_s == pytest.approx(0.3)


def test_span_time_widened_into_implausibly_long_neighbour() -> None:
    # the aligner gave the undecoded tail of the number to "Thank" (a whole second)
    words = [Word("call", 0.0, 0.3), Word("me", 0.3, 0.5), Word("on", 0.5, 0.7),
             Word("555-49", 0.7, 2.0), Word("Thank", 2.0, 3.0), Word("you.", 3.0, 3.3)]
    spans = detect_pii(Transcript("", words))
    assert [(s.first_word, s.last_word) for s in spans] == [(3, 3)]
    assert spans[0].start_s == pytest.approx(0.7)
    assert spans[0].end_s == pytest.approx(3.0 - (0.1 + 0.06 * 5))
    assert words[4].start_s < spans[0].end_s < words[4].end_s


def test_spans_are_ordered_and_disjoint() -> None:
    t = tr(
        "Hi this is Jane Doe my number is 555 0199 and my email is jane at example dot com "
        "and my card is 4111 1111 1111 1111"
    )
    spans = detect_pii(t)
    assert [s.type for s in spans] == ["NAME", "PHONE", "EMAIL", "CARD"]
    for a, b in zip(spans, spans[1:], strict=False):
        assert a.last_word < b.first_word
        assert a.end_s <= b.start_s


def test_mask_keeps_other_words_verbatim_and_punctuation() -> None:
    t = tr("Okay, my PIN is 4821. Thanks!")
    assert mask_transcript(t, detect_pii(t)) == "Okay, my PIN is [PIN]. Thanks!"


def test_mask_handles_overlapping_and_out_of_range_spans() -> None:
    t = tr("a b c d e f")
    spans = [PiiSpan("NAME", 0, 0, 1, 3), PiiSpan("PHONE", 0, 0, 2, 4), PiiSpan("X", 0, 0, 5, 99)]
    assert mask_transcript(t, spans) == "a [NAME] [X]"


def test_empty_and_wordless_transcripts() -> None:
    assert detect_pii(Transcript("", [])) == []
    assert detect_pii(Transcript("call 555 0199", [])) == []
    assert mask_transcript(Transcript(" hello ", []), []) == "hello"
    assert detect_pii(Transcript("", [Word(" ", 0, 0.1), Word("...", 0.1, 0.2)])) == []


def test_without_presidio_the_own_rules_still_find_everything_core() -> None:
    t = tr("My email is jane.doe@example.com and my number is 555 0199.")
    kinds = [s.type for s in detect_pii(t, use_presidio=False)]
    assert kinds == ["EMAIL", "PHONE"]


def test_presidio_adds_written_patterns() -> None:
    # an e-mail inside one token is found by both; Presidio alone would find it too
    from earshot.pipeline.pii_presidio import analyze

    hits = analyze("contact jane.doe@example.com or 4111 1111 1111 1111")
    assert {h.type for h in hits} >= {"EMAIL", "CARD"}


def test_presidio_runs_when_it_can_help(monkeypatch) -> None:
    import earshot.pipeline.pii_presidio as pp

    calls: list[str] = []
    real = pp.analyze
    monkeypatch.setattr(pp, "analyze", lambda text: calls.append(text) or real(text))
    monkeypatch.delenv("EARSHOT_PII_PRESIDIO", raising=False)
    assert masked("My IBAN is GB82 WEST 1234 5698 7654 32.") == "My IBAN is [ACCOUNT]."
    assert len(calls) == 1
    assert masked("Call me at 5 pm on the 3rd.") == "Call me at 5 pm on the 3rd."
    assert len(calls) == 1  # nothing Presidio could add: not run
    monkeypatch.setenv("EARSHOT_PII_PRESIDIO", "1")
    masked("Call me at 5 pm.")
    assert len(calls) == 2
    monkeypatch.setenv("EARSHOT_PII_PRESIDIO", "0")
    masked("My IBAN is GB82 WEST 1234 5698 7654 32.")
    assert len(calls) == 2


def _with_probs(pairs: list[tuple[str, float]]) -> Transcript:
    return Transcript("", [Word(" " + w, k * 0.3, k * 0.3 + 0.2, p) for k, (w, p) in enumerate(pairs)])


def test_cued_value_goes_on_past_a_full_stop_the_asr_put_inside_it() -> None:
    # "my number is five five five, oh one nine nine" as tiny.en heard it on an AMD EPYC
    t = _with_probs([("My", 0.49), ("number", 0.83), ("is", 0.98), ("5", 0.43), ("times.", 0.13),
                     ("Oh", 0.35), ("well,", 0.49), ("I'm", 0.67), ("dying.", 0.24)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "My number is [PHONE]."


def test_cued_value_stops_at_a_confident_new_sentence() -> None:
    t = _with_probs([("My", 0.9), ("number", 0.9), ("is", 0.98), ("555", 0.9), ("0199.", 0.9),
                     ("Can", 0.95), ("you", 0.99), ("call", 0.9), ("back?", 0.9)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "My number is [PHONE]. Can you call back?"


def test_spoken_email_goes_on_past_a_full_stop_after_an_unsure_word() -> None:
    # "write to me at rahul dot sandoval at gmail dot com any time" as tiny.en heard it (AMD EPYC)
    t = _with_probs([("You", 0.61), ("can", 0.97), ("write", 0.94), ("to", 0.68), ("me", 0.98),
                     ("at", 0.96), ("rahol.", 0.41), ("send", 0.21), ("you", 0.13), ("will", 0.25),
                     ("at", 0.72), ("email", 0.37), (".com", 0.9), ("anytime", 0.55)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "You can write to me at [EMAIL] anytime"


def test_spoken_email_clause_ends_at_a_confident_full_stop() -> None:
    t = _with_probs([("Write", 0.9), ("to", 0.9), ("me", 0.98), ("at", 0.96), ("home.", 0.95),
                     ("Send", 0.9), ("the", 0.9), ("letter", 0.9), ("at", 0.9), ("noon.", 0.9)])  # fmt: skip
    assert mask_transcript(t, detect_pii(t)) == "Write to me at home. Send the letter at noon."


def test_two_digit_spans_with_a_misheard_word_between_are_one_number() -> None:
    # "my phone number is oh seven five eight, three six three double one seven oh" by telephone:
    # "My phone number is [PHONE] I made [NUMBER]", "I made" said "... double one ..."
    t = _with_probs([("My", 0.9), ("phone", 0.9), ("number", 0.9), ("is", 0.9), ("4am", 0.3),
                     ("I", 0.4), ("made", 0.6), ("363", 0.5), ("100", 0.4)])  # fmt: skip
    spans = [PiiSpan("PHONE", 1.2, 1.4, 4, 4), PiiSpan("NUMBER", 2.1, 2.6, 7, 8)]
    out = continue_numbers(t, spans)
    assert mask_transcript(t, out) == "My phone number is [PHONE] [NUMBER]"
    assert out[0].last_word == 6 and out[0].end_s >= t.words[6].end_s
    assert out[1] == spans[1]


def test_digit_spans_stay_apart_over_sure_words_cues_sentence_ends_or_three_words() -> None:
    spans = [PiiSpan("PHONE", 0.0, 0.2, 0, 0), PiiSpan("NUMBER", 1.0, 1.2, 3, 3)]
    for between in (
        [("or", 0.95), ("else", 0.4)],  # a sure word: ordinary speech
        [("pin", 0.4), ("is", 0.4)],  # a cue: a second value
        [("then.", 0.4), ("OK", 0.4)],  # a sentence end
    ):
        t = _with_probs([("07700900123", 0.5), *between, ("4455", 0.5)])
        assert continue_numbers(t, spans) == spans, between
    t = _with_probs([("07700900123", 0.5), ("a", 0.4), ("b", 0.4), ("c", 0.4), ("4455", 0.5)])
    far = [PiiSpan("PHONE", 0.0, 0.2, 0, 0), PiiSpan("NUMBER", 1.2, 1.4, 4, 4)]
    assert continue_numbers(t, far) == far
    # a name beside a number is not bridged to it
    t = _with_probs([("Anna", 0.5), ("um", 0.4), ("4455", 0.5)])
    pair = [PiiSpan("NAME", 0.0, 0.2, 0, 0), PiiSpan("NUMBER", 0.6, 0.8, 2, 2)]
    assert continue_numbers(t, pair)[0] == pair[0]
