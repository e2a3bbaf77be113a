"""`earshot eval`: speaker privacy and ASR utility of voice anonymisation on a real-speech manifest.

Protocol (documented in docs/deid-evaluation.md):
- speakers are sorted; with 4 or more, the first half is the *attacker's* speech (used only to
  train the semi-informed back-end), the second half is the *test* set every figure is on;
- in the test set the first third of each speaker's utterances enrol, the rest are trials;
- every utterance is anonymised with its own generator seeded from (seed, system, index), with
  the same `anonymise()` the product uses; the attacker anonymises its own speech
  `attacker_copies` times with fresh draws;
- EER for the ignorant, lazy-informed and semi-informed attackers, plus the original speech
  as a reference; WER of an independent ASR (faster-whisper tiny.en) on original vs anonymised.
Anonymised audio only lives in memory; the report holds figures and plots only.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from earshot.evaluation.manifest import (
    Utterance,
    join_utterances,
    limit_balanced,
    load_utterance,
    read_manifest,
    telephone_band,
)
from earshot.evaluation.metrics import (
    cluster_bootstrap,
    compute_eer,
    corpus_wer,
    det_points,
    errors_per_utterance,
)
from earshot.pipeline.types import SAMPLE_RATE, Audio

Progress = Callable[[str, int, int], None]

TARGETS = {
    "eer_ignorant_min": 0.45,
    "eer_lazy_informed_min": 0.35,
    "eer_semi_informed_min": 0.20,
    "wer_rise_points_max": 3.0,
}
ATTACKERS = ("ignorant", "lazy_informed", "semi_informed")


class Anonymiser(Protocol):
    name: str

    def anonymise(self, audio: Audio, rng: np.random.Generator) -> Audio: ...


def _silent(_stage: str, _done: int, _total: int) -> None:
    return None


@dataclass
class _Split:
    rows: list[Utterance]
    test: np.ndarray  # bool mask over rows
    backend: np.ndarray  # bool mask over rows
    enrol: np.ndarray  # bool mask over rows (subset of test)
    trial: np.ndarray  # bool mask over rows (subset of test)


def make_split(rows: list[Utterance], attacker_speakers: set[str] | None = None) -> _Split:
    """Attacker/test speaker halves and the enrol/trial split inside the test half.

    `attacker_speakers`: the attacker's speakers, given (from another manifest); every other
    speaker is a test speaker."""
    from earshot.evaluation.speaker import split_enrol_trial

    speakers = sorted({r.speaker for r in rows})
    spk = np.array([r.speaker for r in rows])
    if attacker_speakers is not None:
        backend_spk = set(attacker_speakers)
    elif len(speakers) >= 4:
        backend_spk = set(speakers[: len(speakers) // 2])
    else:
        backend_spk = set()
    backend = np.isin(spk, list(backend_spk))
    test = ~backend
    enrol = np.zeros(len(rows), dtype=bool)
    trial = np.zeros(len(rows), dtype=bool)
    idx = np.flatnonzero(test)
    e, t = split_enrol_trial(spk[idx])
    enrol[idx[e]] = True
    trial[idx[t]] = True
    return _Split(rows, test, backend, enrol, trial)


def _rng(seed: int, system: str, index: int, copy: int = 0) -> np.random.Generator:
    tag = int.from_bytes(hashlib.sha256(system.encode()).digest()[:4], "little")
    return np.random.default_rng([seed, tag, index, copy])


def _eer_block(target: np.ndarray, nontarget: np.ndarray) -> dict[str, Any]:
    res = compute_eer(target, nontarget)
    return {
        "eer": round(res.eer, 4),
        "threshold": round(res.threshold, 4),
        "n_target": res.n_target,
        "n_nontarget": res.n_nontarget,
    }


def run_eval(
    manifest: Path,
    out_dir: Path,
    *,
    anonymisers: list[Anonymiser] | None = None,
    limit: int | None = None,
    seed: int = 0,
    attacker_copies: int = 2,
    with_asr: bool = True,
    pii: bool = False,
    judge_name: str = "whisper",
    judge_beam: int = 1,
    draws: int = 1,
    telephone: bool = False,
    pii_digits: Path | None = None,
    join: int = 1,
    attacker_manifest: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the whole evaluation, write report.json and report.html into `out_dir`, return it.

    `judge_beam`: beam size of the whisper judge (1, greedy, is the default of every figure so far).
    `draws`: how many times every test utterance is anonymised (independent random draws);
    each figure is the mean over draws, so the draw-to-draw noise of the estimate shrinks.
    `telephone`: every utterance goes through an 8 kHz channel first (originals and anonymised
    alike), as a call recorded at 8 kHz reaches the pipeline.
    `pii_digits`: a manifest of single spoken digits (real speakers); with `pii`, numbers
    joined from them are planted too (`evaluation.real_digits`).
    `join`: every test utterance is `join` rows of one speaker joined (short rows such as single
    digits; `manifest.join_utterances`), before `limit`.
    `attacker_manifest`: the semi-informed attacker trains on this manifest's speakers (all of
    them), and every speaker of `manifest` is a test speaker.
    """
    from earshot.evaluation.speaker import SpeakerEncoder, score_trials, speaker_eer_interval

    progress = progress or _silent
    if anonymisers is None:
        from earshot.pipeline.voice import VoiceAnonymiser

        anonymisers = [VoiceAnonymiser()]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    rows = limit_balanced(join_utterances(read_manifest(manifest), join, seed=0), limit)
    attacker_speakers = None
    if attacker_manifest is not None:
        attacker_rows = [
            Utterance(r.path, "attacker:" + r.speaker, r.transcript, r.parts)
            for r in read_manifest(attacker_manifest)
        ]
        attacker_speakers = {r.speaker for r in attacker_rows}
        rows = rows + attacker_rows
    bank = None
    if pii and pii_digits is not None:  # a bad digit manifest fails now, not after the EERs
        from earshot.evaluation.real_digits import DigitBank

        bank = DigitBank.from_manifest(pii_digits)
    split = make_split(rows, attacker_speakers)
    spk = [r.speaker for r in rows]
    audio: list[Audio] = []
    for i, r in enumerate(rows):
        progress("load audio", i, len(rows))
        audio.append(telephone_band(load_utterance(r)) if telephone else load_utterance(r))
    progress("load audio", len(rows), len(rows))
    durations = np.array([len(a) / SAMPLE_RATE for a in audio])

    encoder = SpeakerEncoder()
    test_idx = np.flatnonzero(split.test)
    emb_orig = np.zeros((len(rows), 256))
    for k, i in enumerate(test_idx):
        progress("embed original", k, len(test_idx))
        emb_orig[i] = encoder.embed(audio[i])
    progress("embed original", len(test_idx), len(test_idx))

    n_test_spk = len({spk[i] for i in test_idx})
    can_verify = n_test_spk >= 2 and split.enrol.any() and split.trial.any()
    plots: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    report: dict[str, Any] = {
        "manifest": Path(manifest).parent.name,
        "n_utterances": len(rows),
        "joined_rows_per_utterance": join,
        "attacker_manifest": Path(attacker_manifest).parent.name if attacker_manifest else None,
        "n_speakers": len(set(spk)),
        "n_test_speakers": n_test_spk,
        "n_test_utterances": int(split.test.sum()),
        "n_attacker_speakers": len({spk[i] for i in np.flatnonzero(split.backend)}),
        "test_audio_s": round(float(durations[split.test].sum()), 1),
        "seed": seed,
        "draws": draws,
        "channel": "telephone (8 kHz)" if telephone else "as recorded",
        "attacker_copies": attacker_copies,
        "targets": TARGETS,
        "original": {},
        "systems": {},
    }
    if can_verify:
        tr = score_trials(emb_orig, emb_orig, spk, split.enrol, split.trial)
        report["original"]["eer"] = _eer_block(tr.target, tr.nontarget)
        interval = speaker_eer_interval([tr], seed=seed)
        if interval is not None:
            report["original"]["eer"]["eer_ci95"] = [round(v, 4) for v in interval]
        plots["original"] = {"original": (tr.target, tr.nontarget)}

    judge = None
    refs = [rows[i].transcript for i in test_idx]
    orig_errors: list[tuple[int, int]] | None = None
    if with_asr:
        from earshot.evaluation.asr import make_judge

        judge = make_judge(judge_name, beam_size=judge_beam)
        report["asr_judge"] = judge.description
        hyps_orig = []
        for k, i in enumerate(test_idx):
            progress("ASR original", k, len(test_idx))
            hyps_orig.append(judge.transcribe(audio[i]))
        progress("ASR original", len(test_idx), len(test_idx))
        orig_errors = errors_per_utterance(refs, hyps_orig)
        report["original"]["wer"] = round(corpus_wer(orig_errors), 4)

    for anon in anonymisers:
        report["systems"][anon.name] = _eval_system(
            anon, audio, spk, split, durations, encoder, emb_orig, judge, refs, report,
            plots, seed=seed, draws=draws, attacker_copies=attacker_copies,
            can_verify=can_verify, progress=progress, orig_errors=orig_errors,
        )

    if pii:
        from earshot.evaluation import pii_eval

        report["pii"] = pii_eval.run_pii_eval(
            out_dir, progress=progress, telephone=telephone, digit_bank=bank, seed=seed
        )

    from earshot.evaluation.report import write_html

    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=_json_default))
    write_html(report, _det_data(plots), out_dir / "report.html")
    return report


def _eval_system(
    anon: Anonymiser,
    audio: list[Audio],
    spk: list[str],
    split: _Split,
    durations: np.ndarray,
    encoder: Any,
    emb_orig: np.ndarray,
    judge: Any,
    refs: list[str],
    report: dict[str, Any],
    plots: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
    *,
    seed: int,
    draws: int,
    attacker_copies: int,
    can_verify: bool,
    progress: Progress,
    orig_errors: list[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """Figures of one anonymiser: speed, EER per attacker and WER, each the mean over `draws`,
    with 95 % intervals from resampling the test speakers (`*_ci95`)."""
    from earshot.evaluation.speaker import LdaBackend, Trials, score_trials, speaker_eer_interval

    name = anon.name
    test_idx = np.flatnonzero(split.test)
    back_idx = np.flatnonzero(split.backend)
    backend = None
    if can_verify and len({spk[i] for i in back_idx}) >= 2:
        train_emb, train_lab = [], []
        total = len(back_idx) * attacker_copies
        for c in range(attacker_copies):
            for k, i in enumerate(back_idx):
                progress(f"attacker back-end ({name})", c * len(back_idx) + k, total)
                y = anon.anonymise(audio[i], _rng(seed, name + "/attacker", int(i), c))
                train_emb.append(encoder.embed(y))
                train_lab.append(spk[i])
        progress(f"attacker back-end ({name})", total, total)
        backend = LdaBackend().fit(np.stack(train_emb), train_lab)

    spent = 0.0
    per_draw: dict[str, list[dict[str, Any]]] = {}
    scores: dict[str, list[Trials]] = {}
    wers: list[float] = []
    draw_errors: list[list[tuple[int, int]]] = []
    n = len(test_idx)
    for d in range(draws):
        tag = f" ({name}, draw {d + 1}/{draws})" if draws > 1 else f" ({name})"
        anon_test: dict[int, Audio] = {}
        for k, i in enumerate(test_idx):
            progress("anonymise" + tag, k, n)
            t0 = time.perf_counter()
            anon_test[i] = anon.anonymise(audio[i], _rng(seed, name, int(i), d))
            spent += time.perf_counter() - t0
        progress("anonymise" + tag, n, n)
        if can_verify:
            emb_anon = np.zeros_like(emb_orig)
            for k, i in enumerate(test_idx):
                progress("embed anonymised" + tag, k, n)
                emb_anon[i] = encoder.embed(anon_test[i])
            progress("embed anonymised" + tag, n, n)
            trials = {
                "ignorant": score_trials(emb_orig, emb_anon, spk, split.enrol, split.trial),
                "lazy_informed": score_trials(emb_anon, emb_anon, spk, split.enrol, split.trial),
            }
            if backend is not None:
                proj = np.zeros((len(spk), backend.transform(emb_anon[:1]).shape[1]))
                proj[test_idx] = backend.transform(emb_anon[test_idx])
                trials["semi_informed"] = score_trials(proj, proj, spk, split.enrol, split.trial)
            for att, tr in trials.items():
                per_draw.setdefault(att, []).append(_eer_block(tr.target, tr.nontarget))
                scores.setdefault(att, []).append(tr)
        if judge is not None:
            hyps = []
            for k, i in enumerate(test_idx):
                progress("ASR anonymised" + tag, k, n)
                hyps.append(judge.transcribe(anon_test[i]))
            progress("ASR anonymised" + tag, n, n)
            draw_errors.append(errors_per_utterance(refs, hyps))
            wers.append(corpus_wer(draw_errors[-1]))
        del anon_test

    total_s = float(durations[test_idx].sum()) * draws
    sysrep: dict[str, Any] = {
        "anonymise_ms_per_audio_s": round(1000 * spent / max(total_s, 1e-9), 2),
        "anonymise_x_realtime": round(total_s / max(spent, 1e-9), 1),
    }
    if per_draw:
        sysrep["eer"] = {}
        plots[name] = {}
        for att, blocks in per_draw.items():
            block = dict(blocks[0])
            block["eer"] = round(float(np.mean([b["eer"] for b in blocks])), 4)
            if draws > 1:
                block["eer_draws"] = [b["eer"] for b in blocks]
                block["threshold"] = round(float(np.mean([b["threshold"] for b in blocks])), 4)
            interval = speaker_eer_interval(scores[att], seed=seed)
            if interval is not None:
                block["eer_ci95"] = [round(v, 4) for v in interval]
            sysrep["eer"][att] = block
            plots[name][att] = (
                np.concatenate([t.target for t in scores[att]]),
                np.concatenate([t.nontarget for t in scores[att]]),
            )
    if wers:
        wer = float(np.mean(wers))
        sysrep["wer"] = round(wer, 4)
        if draws > 1:
            sysrep["wer_draws"] = [round(w, 4) for w in wers]
        sysrep["wer_rise_points"] = round(100 * (wer - report["original"]["wer"]), 2)
        test_spk = [spk[i] for i in test_idx]
        rise = _wer_rise_interval(test_spk, orig_errors, draw_errors, seed=seed) if orig_errors else None
        if rise is not None:
            sysrep["wer_rise_points_ci95"] = [round(v, 2) for v in rise]
    sysrep["pass"] = _passes(sysrep)
    return sysrep


def _wer_rise_interval(
    speakers: list[str],
    orig: list[tuple[int, int]],
    draws: list[list[tuple[int, int]]],
    *,
    seed: int,
) -> tuple[float, float] | None:
    """95 % interval of the WER rise (points, mean over draws), the test speakers resampled:
    original and anonymised errors of the same utterances move together (a paired interval)."""
    rows: dict[str, list[int]] = {}
    for i, s in enumerate(speakers):
        rows.setdefault(s, []).append(i)

    def rise(sample: list[str]) -> float:
        idx = [i for s in sample for i in rows[s]]
        words = sum(orig[i][1] for i in idx)
        if not words:
            return 0.0
        before = sum(orig[i][0] for i in idx) / words
        after = float(np.mean([sum(d[i][0] for i in idx) / words for d in draws]))
        return 100 * (after - before)

    return cluster_bootstrap(speakers, rise, seed=seed)


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)


def _passes(sysrep: dict[str, Any]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for att in ATTACKERS:
        if att in sysrep.get("eer", {}):
            out[f"eer_{att}"] = sysrep["eer"][att]["eer"] >= TARGETS[f"eer_{att}_min"]
    if "wer_rise_points" in sysrep:
        out["wer_rise"] = sysrep["wer_rise_points"] <= TARGETS["wer_rise_points_max"]
    return out


def _det_data(
    plots: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Scores and DET points per system and attacker, for the HTML plots."""
    out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for system, attacks in plots.items():
        out[system] = {}
        for att, (tgt, non) in attacks.items():
            miss, fa, _ = det_points(tgt, non)
            out[system][att] = {"target": tgt, "nontarget": non, "p_miss": miss, "p_fa": fa}
    return out
