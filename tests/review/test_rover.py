"""ROVER voting, alignment and WER."""

from earshot.review import rover
from earshot.review.consolidation import agreement
from earshot.review.text import norm_words, pairwise_wer, wer


def test_wer_basics():
    assert wer("a b c d", "a b c d") == 0
    assert wer("a b c d", "a x c") == 0.5
    assert wer("", "") == 0 and wer("", "x") == 1
    assert wer("Hello, World!", "hello world") == 0
    assert norm_words("call [PHONE] now.") == ["call", "[PHONE]", "now"]
    assert pairwise_wer("a b", "a b c d") == (1.0 + 0.5) / 2


def test_majority_wins_with_insertions_and_deletions():
    vote = rover.vote(["the cat sat on the mat", "the cat sat on a mat", "a cat sat on the mat today"])
    assert vote.text == "the cat sat on the mat" and vote.ties == []


def test_two_graders_disagreeing_is_a_tie():
    vote = rover.vote(["switch on the light", "switch off the light"])
    assert len(vote.ties) == 1 and vote.text == "switch on the light"


def test_surface_form_kept():
    assert rover.vote(["Call Anna.", "call anna", "Call Anna."]).text == "Call Anna."


def test_agreement_figures():
    a = agreement(["a b", "a b", "a c"], [4, 5, 2], [True, True, None])
    assert a.graders == 3 and a.spread == 3
    assert a.grade_agreement == round(1 / 3, 4)
    assert a.intent_agreement == 1.0
