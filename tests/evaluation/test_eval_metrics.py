"""EER, DET and WER helpers on synthetic inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from earshot.evaluation.metrics import compute_eer, det_points, normalise_text, word_error_rate


def test_perfect_separation_has_zero_eer() -> None:
    res = compute_eer(np.array([0.8, 0.9, 1.0]), np.array([0.1, 0.2, 0.3]))
    assert res.eer == pytest.approx(0.0)
    assert 0.3 <= res.threshold <= 0.8


def test_fully_inverted_scores_have_eer_one() -> None:
    assert compute_eer(np.array([0.1, 0.2]), np.array([0.8, 0.9])).eer == pytest.approx(1.0)


def test_identical_distributions_are_at_chance() -> None:
    rng = np.random.default_rng(0)
    res = compute_eer(rng.normal(size=20000), rng.normal(size=20000))
    assert res.eer == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("dprime", [0.5, 1.0, 2.0, 3.0])
def test_gaussian_eer_matches_theory(dprime: float) -> None:
    rng = np.random.default_rng(1)
    res = compute_eer(rng.normal(dprime, 1.0, 40000), rng.normal(0.0, 1.0, 40000))
    assert res.eer == pytest.approx(norm.cdf(-dprime / 2), abs=0.006)
    assert res.threshold == pytest.approx(dprime / 2, abs=0.05)


def test_hand_computed_eer() -> None:
    # thresholds: at t=0.45, miss = 1/4 (0.4), fa = 1/4 (0.5) -> EER 25 %
    target = np.array([0.4, 0.6, 0.7, 0.9])
    nontarget = np.array([0.1, 0.2, 0.3, 0.5])
    assert compute_eer(target, nontarget).eer == pytest.approx(0.25)


def test_det_points_are_monotone_and_span_the_range() -> None:
    rng = np.random.default_rng(2)
    miss, fa, thr = det_points(rng.normal(1, 1, 300), rng.normal(0, 1, 500))
    assert miss[0] == 0.0 and fa[0] == 1.0 and miss[-1] == 1.0 and fa[-1] == 0.0
    assert np.all(np.diff(miss) >= 0) and np.all(np.diff(fa) <= 0) and np.all(np.diff(thr) > 0)


def test_eer_needs_both_kinds_of_trials() -> None:
    with pytest.raises(ValueError):
        compute_eer(np.array([]), np.array([0.1]))


def test_text_normalisation_and_wer() -> None:
    assert normalise_text("Kids are talking, by the DOOR!") == "kids are talking by the door"
    assert normalise_text("I have 2 dogs.") == "i have two dogs"
    # a digit string counts the same however the ASR writes it
    for said in ("7, 3, 1, 0", "7310", "seven three one zero", "7-3-10"):
        assert normalise_text(f"Call {said}.") == "call seven three one zero"
    refs = ["kids are talking by the door", "dogs are sitting by the door"]
    assert word_error_rate(refs, ["Kids are talking by the door.", "Dogs are sitting by the door"]) == 0.0
    # one substitution + one deletion over 12 reference words
    wer = word_error_rate(refs, ["kids are walking by the door", "dogs sitting by the door"])
    assert wer == pytest.approx(2 / 12)
