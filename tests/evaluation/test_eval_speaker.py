"""Trial construction, scoring and the semi-informed back-end on synthetic embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from earshot.evaluation.manifest import Utterance
from earshot.evaluation.metrics import compute_eer
from earshot.evaluation.runner import make_split
from earshot.evaluation.speaker import (
    LdaBackend,
    Trials,
    score_trials,
    speaker_eer_interval,
    split_enrol_trial,
)


def _clusters(n_spk: int, per: int, spread: float, seed: int = 0, dim: int = 32):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_spk, dim))
    emb = np.repeat(centres, per, axis=0) + spread * rng.normal(size=(n_spk * per, dim))
    labels = [f"s{i}" for i in range(n_spk) for _ in range(per)]
    return emb, labels


def test_enrol_trial_split_is_a_third_per_speaker() -> None:
    speakers = ["a"] * 12 + ["b"] * 3 + ["c"]
    enrol, trial = split_enrol_trial(speakers)
    assert enrol[:12].sum() == 4 and enrol[12:15].sum() == 1
    assert not enrol[15] and trial[15]  # a single utterance cannot enrol and trial
    assert np.all(enrol ^ trial)


def test_score_trials_counts_and_separation() -> None:
    emb, labels = _clusters(5, 6, spread=0.1)
    enrol, trial = split_enrol_trial(labels)
    tr = score_trials(emb, emb, labels, enrol, trial)
    n_trials = trial.sum()
    assert tr.target.size == n_trials and tr.nontarget.size == n_trials * 4
    assert compute_eer(tr.target, tr.nontarget).eer == 0.0
    # each score carries the speaker of its trial utterance
    spk = np.asarray(labels)[trial]
    assert tr.target_speakers is not None and tr.nontarget_speakers is not None
    assert sorted(tr.target_speakers) == sorted(spk)
    assert all((tr.nontarget_speakers == s).sum() == 4 * (spk == s).sum() for s in set(labels))


def test_speaker_eer_interval_brackets_the_figure_and_shrinks_with_speakers() -> None:
    rng = np.random.default_rng(0)

    def trials(n_speakers: int) -> Trials:
        spk = np.repeat([f"s{i}" for i in range(n_speakers)], 10)
        shift = np.repeat(rng.normal(0.0, 0.7, n_speakers), 10)  # speakers differ: clustered
        target = rng.normal(1.0, 1.0, spk.size) + shift
        nontarget = rng.normal(0.0, 1.0, spk.size * 3)
        return Trials(target, nontarget, spk, np.repeat(spk, 3))

    few, many = trials(6), trials(60)
    narrow, wide = speaker_eer_interval([many]), speaker_eer_interval([few])
    assert narrow is not None and wide is not None
    assert narrow[0] <= compute_eer(many.target, many.nontarget).eer <= narrow[1]
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    assert speaker_eer_interval([Trials(few.target, few.nontarget)]) is None  # no speaker labels


def test_split_keeps_attacker_and_test_speakers_disjoint() -> None:
    rows = [Utterance(Path(f"{s}{i}.wav"), s, "x") for s in "abcdef" for i in range(6)]
    split = make_split(rows)
    spk = np.array([r.speaker for r in rows])
    assert set(spk[split.backend]) == {"a", "b", "c"} and set(spk[split.test]) == {"d", "e", "f"}
    assert not np.any(split.enrol & split.backend) and not np.any(split.trial & split.backend)
    assert np.array_equal(split.enrol | split.trial, split.test)


def test_few_speakers_means_no_attacker_half() -> None:
    rows = [Utterance(Path(f"{s}{i}.wav"), s, "x") for s in "ab" for i in range(3)]
    split = make_split(rows)
    assert not split.backend.any() and split.test.all()


def test_lda_backend_removes_a_nuisance_direction() -> None:
    # identity lives in dims 0-7; a large random per-utterance nuisance lives in dims 8-15
    def make(n_spk: int, per: int, seed: int):
        r = np.random.default_rng(seed)
        centres = np.zeros((n_spk, 16))
        centres[:, :8] = r.normal(size=(n_spk, 8))
        emb = np.repeat(centres, per, axis=0) + 0.15 * r.normal(size=(n_spk * per, 16))
        emb[:, 8:] += 3.0 * r.normal(size=(n_spk * per, 8))
        return emb, [f"{seed}-{i}" for i in range(n_spk) for _ in range(per)]

    train, train_lab = make(20, 8, 1)
    test, test_lab = make(8, 6, 2)
    enrol, trial = split_enrol_trial(test_lab)
    raw = score_trials(test, test, test_lab, enrol, trial)
    proj = LdaBackend().fit(train, train_lab).transform(test)
    tuned = score_trials(proj, proj, test_lab, enrol, trial)
    assert compute_eer(tuned.target, tuned.nontarget).eer < compute_eer(raw.target, raw.nontarget).eer


def test_backend_needs_two_speakers() -> None:
    emb, labels = _clusters(1, 4, 0.1)
    with pytest.raises(ValueError):
        LdaBackend().fit(emb, labels)


def test_given_attacker_speakers_leave_every_other_speaker_to_the_test() -> None:
    speakers = ["a", "b", "attacker:x", "attacker:y"]
    rows = [Utterance(Path(f"{s}{i}.wav"), s, "x") for s in speakers for i in range(3)]
    split = make_split(rows, attacker_speakers={"attacker:x", "attacker:y"})
    spk = np.array([r.speaker for r in rows])
    assert set(spk[split.backend]) == {"attacker:x", "attacker:y"}
    assert set(spk[split.test]) == {"a", "b"}
