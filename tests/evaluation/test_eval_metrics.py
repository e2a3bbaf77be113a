"""EER, DET and WER helpers on synthetic inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from earshot.evaluation.metrics import (
    cluster_bootstrap,
    compute_eer,
    det_points,
    errors_per_utterance,
    normalise_text,
    wilson_interval,
    word_error_rate,
)


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


def test_wilson_interval_known_values() -> None:
    lo, hi = wilson_interval(0, 10)  # type: ignore[misc]
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)  # type: ignore[misc]
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)
    lo, hi = wilson_interval(359, 378)  # type: ignore[misc]
    assert lo < 359 / 378 < hi and lo == pytest.approx(0.9228, abs=1e-4)
    assert wilson_interval(0, 0) is None


def test_wilson_interval_narrows_with_more_values() -> None:
    small = wilson_interval(19, 20)
    large = wilson_interval(190, 200)
    assert small is not None and large is not None
    assert large[1] - large[0] < small[1] - small[0]


def test_cluster_bootstrap_resamples_whole_clusters_reproducibly() -> None:
    values = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    drawn: list[list[str]] = []

    def mean(sample: list[str]) -> float:
        drawn.append(sample)
        return float(np.mean([values[k] for k in sample]))

    first = cluster_bootstrap(list(values), mean, n_boot=400, seed=7)
    assert first == cluster_bootstrap(list(values), mean, n_boot=400, seed=7)
    assert first is not None and 1.0 <= first[0] < 2.5 < first[1] <= 4.0
    assert all(len(s) == 4 and set(s) <= set(values) for s in drawn)
    assert any(len(set(s)) < 4 for s in drawn)  # with replacement
    assert cluster_bootstrap(["a", "a"], mean) is None  # one cluster: no interval


def test_errors_per_utterance_sum_to_the_corpus_wer() -> None:
    refs = ["the cat sat", "call me at five", "", "one two"]
    hyps = ["the cat sat down", "call at 5", "noise", "one to"]
    pairs = errors_per_utterance(refs, hyps)
    assert pairs == [(1, 3), (1, 4), (0, 0), (1, 2)]
    assert sum(e for e, _ in pairs) / sum(n for _, n in pairs) == pytest.approx(word_error_rate(refs, hyps))
    with pytest.raises(ValueError):
        errors_per_utterance(["a"], [])
