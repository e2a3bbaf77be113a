"""Speaker-verification attacker: resemblyzer embeddings, trials, and the three attack models.

- ignorant: enrol on original speech, test on anonymised speech, cosine scoring;
- lazy-informed: enrolment and trials both anonymised (each utterance with its own random
  parameters, as the product does), cosine scoring;
- semi-informed: as lazy-informed, plus a back-end (LDA with shrinkage, then cosine on
  length-normalised projections) trained on anonymised speech of speakers disjoint from the
  test speakers. The attacker may anonymise its training speech several times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from earshot.pipeline.types import SAMPLE_RATE, Audio


class SpeakerEncoder:
    """resemblyzer d-vector encoder (weights ship inside the PyPI package; loads offline)."""

    def __init__(self) -> None:
        import warnings

        with warnings.catch_warnings():  # webrtcvad imports the deprecated pkg_resources
            warnings.simplefilter("ignore", UserWarning)
            from resemblyzer import VoiceEncoder

        self._enc = VoiceEncoder("cpu", verbose=False)

    def embed(self, audio: Audio) -> np.ndarray:
        """L2-normalised 256-d embedding of one utterance (resemblyzer's own preprocessing)."""
        from resemblyzer import preprocess_wav

        wav = preprocess_wav(np.asarray(audio, dtype=np.float32), source_sr=None)
        if len(wav) < SAMPLE_RATE // 4:  # VAD trimmed nearly everything: embed the raw audio
            wav = np.asarray(audio, dtype=np.float32)
        if len(wav) < SAMPLE_RATE // 10:
            wav = np.pad(wav, (0, SAMPLE_RATE // 10 - len(wav)))
        v = self._enc.embed_utterance(wav)
        return (v / (np.linalg.norm(v) + 1e-12)).astype(np.float64)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)


@dataclass
class Trials:
    """Scores split into same-speaker (target) and different-speaker (non-target) trials, with
    the speaker of each trial utterance (for resampling by speaker, `speaker_eer_interval`)."""

    target: np.ndarray
    nontarget: np.ndarray
    target_speakers: np.ndarray | None = None
    nontarget_speakers: np.ndarray | None = None


def split_enrol_trial(speakers: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (enrol, trial): the first third (at least 1) of each speaker's rows enrol."""
    speakers = list(speakers)
    enrol = np.zeros(len(speakers), dtype=bool)
    counts: dict[str, int] = {}
    totals = {s: speakers.count(s) for s in set(speakers)}
    for i, s in enumerate(speakers):
        n_enrol = max(1, totals[s] // 3)
        if counts.get(s, 0) < n_enrol and totals[s] > 1:
            enrol[i] = True
        counts[s] = counts.get(s, 0) + 1
    return enrol, ~enrol


def score_trials(
    enrol_emb: np.ndarray,
    trial_emb: np.ndarray,
    speakers: Sequence[str],
    enrol: np.ndarray,
    trial: np.ndarray,
) -> Trials:
    """Cosine scores of every trial utterance against every speaker model.

    A speaker model is the normalised mean of that speaker's enrolment embeddings (rows of
    `enrol_emb` where `enrol`); trials are rows of `trial_emb` where `trial`.
    """
    spk = np.asarray(list(speakers))
    models = sorted(set(spk[enrol]))
    model_mat = _unit(np.stack([enrol_emb[enrol & (spk == m)].mean(axis=0) for m in models]))
    t_emb = _unit(trial_emb[trial])
    scores = t_emb @ model_mat.T  # (n_trials, n_models)
    same = spk[trial][:, None] == np.asarray(models)[None, :]
    who = np.broadcast_to(spk[trial][:, None], same.shape)
    return Trials(
        target=scores[same], nontarget=scores[~same],
        target_speakers=who[same], nontarget_speakers=who[~same],
    )  # fmt: skip


def speaker_eer_interval(
    draws: Sequence[Trials], *, seed: int = 0, n_boot: int = 1000
) -> tuple[float, float] | None:
    """95 % interval of the EER averaged over `draws` (the same trials, anonymised again), with
    the trial speakers resampled together (`metrics.cluster_bootstrap`): how far the figure
    could move on other speakers like these. None without speaker labels or with one speaker."""
    from earshot.evaluation.metrics import cluster_bootstrap, compute_eer

    if not draws or any(d.target_speakers is None or d.nontarget_speakers is None for d in draws):
        return None
    by_speaker = [
        (
            {str(k): d.target[d.target_speakers == k] for k in np.unique(d.target_speakers)},
            {str(k): d.nontarget[d.nontarget_speakers == k] for k in np.unique(d.nontarget_speakers)},
        )
        for d in draws
    ]
    empty = np.zeros(0)

    def mean_eer(sample: list[str]) -> float:
        eers = []
        for tgt, non in by_speaker:
            t = np.concatenate([tgt.get(k, empty) for k in sample])
            n = np.concatenate([non.get(k, empty) for k in sample])
            eers.append(compute_eer(t, n).eer if t.size and n.size else 0.5)
        return float(np.mean(eers))

    speakers = sorted(set(by_speaker[0][0]) | set(by_speaker[0][1]))
    return cluster_bootstrap(speakers, mean_eer, seed=seed, n_boot=n_boot)


class LdaBackend:
    """Semi-informed attacker's back-end: centre, LDA (shrinkage), length-normalise, cosine."""

    def __init__(self, max_dim: int = 150) -> None:
        self.max_dim = max_dim
        self._lda = None
        self._mean: np.ndarray | None = None

    def fit(self, emb: np.ndarray, speakers: Sequence[str]) -> LdaBackend:
        """Learn the projection from anonymised embeddings of the attacker's own speakers."""
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        labels = np.asarray(list(speakers))
        n_cls = len(set(labels))
        if n_cls < 2:
            raise ValueError("the back-end needs at least two training speakers")
        self._mean = emb.mean(axis=0)
        dim = min(self.max_dim, n_cls - 1, emb.shape[1])
        self._lda = LinearDiscriminantAnalysis(
            solver="eigen", shrinkage="auto", n_components=dim
        ).fit(emb - self._mean, labels)
        return self

    def transform(self, emb: np.ndarray) -> np.ndarray:
        """Project embeddings into the back-end space (unit length, so dot = cosine)."""
        if self._lda is None or self._mean is None:
            raise RuntimeError("back-end is not fitted")
        return _unit(self._lda.transform(emb - self._mean))
