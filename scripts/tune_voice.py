"""Tune the voice anonymiser on the *tuning* speakers only (RAVDESS actors 01-12).

Not part of the product: a development harness that the figures in docs/deid-evaluation.md
("How the method was chosen") come from. It never touches actors 13-24, the held-out speakers
`earshot eval` reports on.

    .venv/bin/python scripts/tune_voice.py --threads 1 default 'candidates=3' --seeds 0 1 2 3

Each positional argument is a variant: `default`, `none` (the input unchanged), `mcadams`,
`psola` (probe: the pitch step by Praat's PSOLA instead of the phase vocoder), `high-up=LO:HI`
(probe: voices over 160 Hz shifted up by LO-HI semitones instead of down), or comma-separated
`field=value` overrides of `AnonymiserConfig` (tuples as `a:b`). Per
variant it prints, over the 12 tuning speakers: ignorant and lazy-informed EER (96 target /
1056 non-target trials per seed), the semi-informed EER as the mean of two folds (attacker
01-06 / test 07-12 and the reverse, two attacker copies), the ignorant EER with same-gender
non-targets only, and the WER of faster-whisper tiny.en on all 144 utterances (and its rise
over the original).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from earshot.evaluation.asr import WhisperJudge
from earshot.evaluation.manifest import load_audio, read_manifest, telephone_band
from earshot.evaluation.metrics import compute_eer, word_error_rate
from earshot.evaluation.runner import _rng
from earshot.evaluation.speaker import LdaBackend, SpeakerEncoder, score_trials, split_enrol_trial
from earshot.pipeline.voice import AnonymiserConfig, McAdamsAnonymiser, VoiceAnonymiser, _Draw, median_f0

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess16k" / "MANIFEST.tsv"
TUNING = [f"Actor_{i:02d}" for i in range(1, 13)]


def male_actors(speakers: Iterable[str]) -> np.ndarray:
    """One flag per RAVDESS speaker label ("Actor_NN"): odd-numbered actors are male."""
    return np.array([int(s[-2:]) % 2 == 1 for s in speakers])


def parse_variant(text: str) -> tuple[str, object]:
    if text == "default":
        return text, VoiceAnonymiser()
    if text == "mcadams":
        return text, McAdamsAnonymiser()
    if text == "none":  # probe: the input unchanged (with --world: WORLD's resynthesis alone)
        return text, _Unchanged()
    if text == "psola":
        return text, PsolaPitchAnonymiser()
    if text.startswith("high-up="):
        lo, hi = (float(v) for v in text.split("=", 1)[1].split(":"))
        return text, HighUpAnonymiser((lo, hi))
    fields = {f.name: f for f in dataclasses.fields(AnonymiserConfig)}
    kwargs: dict[str, object] = {}
    for part in text.split(","):
        key, _, raw = part.partition("=")
        key = key.strip()
        if key not in fields:
            sys.exit(f"unknown field {key!r}")
        if ":" in raw:
            kwargs[key] = tuple(float(v) for v in raw.split(":"))
        else:
            kwargs[key] = ast.literal_eval(raw)
    return text, VoiceAnonymiser(AnonymiserConfig(**kwargs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--no-asr", action="store_true")
    ap.add_argument("--show-errors", action="store_true")
    ap.add_argument("--beam", type=int, default=1, help="beam size of the tiny.en judge (1: greedy)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for the encoder and the ASR")
    ap.add_argument(
        "--narrowband", action="store_true", help="telephone input: through 8 kHz and back"
    )
    ap.add_argument(
        "--tempo", type=float, default=0.0,
        help="probe only: time-scale every anonymised utterance by a random rate within 1/(1+T)..1+T",
    )  # fmt: skip
    ap.add_argument(
        "--world", choices=["resynth", "ap-flat"], default=None,
        help="probe only: WORLD (pyworld) re-analysis and resynthesis of every anonymised utterance: "
        "its own pulse-and-noise excitation instead of the speaker's (ap-flat: a generic aperiodicity)",
    )  # fmt: skip
    ap.add_argument(
        "--channel", action="store_true",
        help="give each tuning speaker its own simulated recording channel (noise floor, colour, room)",
    )  # fmt: skip
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    rows = [r for r in read_manifest(DATA) if r.speaker in TUNING]
    spk = np.array([r.speaker for r in rows])
    male = male_actors(spk)
    audio = [load_audio(r.path) for r in rows]
    if args.channel:
        audio = [recording_channel(a, TUNING.index(r.speaker)) for a, r in zip(audio, rows, strict=True)]
    if args.narrowband:
        audio = [telephone_band(a) for a in audio]
    refs = [r.transcript for r in rows]
    enc = SpeakerEncoder()
    judge = None if args.no_asr else WhisperJudge(cpu_threads=args.threads, beam_size=args.beam)
    emb_orig = np.stack([enc.embed(a) for a in audio])
    enrol, trial = split_enrol_trial(spk)
    folds = [np.isin(spk, TUNING[:6]), np.isin(spk, TUNING[6:])]
    print(f"original EER {100 * eer(emb_orig, emb_orig, spk, enrol, trial):.1f} %", end="")
    if judge is not None:
        hyp_orig = [judge.transcribe(a) for a in audio]
        wer_orig = word_error_rate(refs, hyp_orig)
        print(f"  WER {100 * wer_orig:.1f} %", end="")
    print()
    head = ("ign", "ign-sg", "lazy", "semi", "WER", "rise")
    print(f"{'variant':60s} " + " ".join(f"{h:>5s}" for h in head) + " ms/s")
    for text in args.variants:
        name, anon = parse_variant(text)
        res = []
        for seed in args.seeds:
            t0 = time.perf_counter()
            anon_a = [anon.anonymise(a, _rng(seed, "tune", i)) for i, a in enumerate(audio)]
            ms = 1000 * (time.perf_counter() - t0) / (sum(len(a) for a in audio) / 16000)
            anon_b = [anon.anonymise(a, _rng(seed, "tune/b", i)) for i, a in enumerate(audio)]
            if args.tempo > 0:
                anon_a = [random_tempo(a, args.tempo, _rng(seed, "tempo", i)) for i, a in enumerate(anon_a)]
                anon_b = [random_tempo(a, args.tempo, _rng(seed, "tempo/b", i)) for i, a in enumerate(anon_b)]
            if args.world:
                anon_a = [world_resynth(a, args.world) for a in anon_a]
                anon_b = [world_resynth(a, args.world) for a in anon_b]
            ea = np.stack([enc.embed(a) for a in anon_a])
            eb = np.stack([enc.embed(a) for a in anon_b])
            ign = eer(emb_orig, ea, spk, enrol, trial)
            tr = score_trials(emb_orig, ea, spk, enrol, trial)
            sg = same_gender_nontarget(emb_orig, ea, spk, male, enrol, trial, tr)
            lazy = eer(ea, ea, spk, enrol, trial)
            semi = []
            for k in range(2):
                train, test = folds[k], folds[1 - k]
                be = LdaBackend().fit(np.concatenate([ea[train], eb[train]]), list(spk[train]) * 2)
                proj = np.zeros((len(rows), be.transform(ea[:1]).shape[1]))
                proj[test] = be.transform(ea[test])
                e_t, t_t = split_enrol_trial(spk[test])
                en = np.zeros(len(rows), bool)
                tm = np.zeros(len(rows), bool)
                en[np.flatnonzero(test)[e_t]] = True
                tm[np.flatnonzero(test)[t_t]] = True
                semi.append(eer(proj, proj, spk, en, tm))
            wer = rise = float("nan")
            if judge is not None:
                hyps = [judge.transcribe(a) for a in anon_a]
                wer = word_error_rate(refs, hyps)
                rise = wer - wer_orig
                if args.show_errors:
                    for i, (r, h) in enumerate(zip(refs, hyps, strict=True)):
                        if word_error_rate([r], [h]) > 0:
                            print(f"    {spk[i]} #{i}: {h!r}")
            res.append((ign, sg, lazy, float(np.mean(semi)), wer, rise, ms))
        m = np.mean(np.array(res), axis=0)
        print(
            f"{name[:60]:60s} {100 * m[0]:5.1f} {100 * m[1]:6.1f} {100 * m[2]:5.1f} {100 * m[3]:5.1f} "
            f"{100 * m[4]:5.1f} {100 * m[5]:+5.1f} {m[6]:.1f}",
            flush=True,
        )


class _Unchanged:
    def anonymise(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(x, np.float32)


def praat_psola(x: np.ndarray, ratio: float) -> np.ndarray:
    """`x` with its pitch scaled by `ratio` through Praat's TD-PSOLA (parselmouth: pitch marks
    from its own tracker, 75-600 Hz; overlap-add resynthesis), duration and envelope kept. A
    probe (twenty-seventh round; parselmouth is not a dependency, and Praat is GPL)."""
    try:
        import parselmouth
        from parselmouth.praat import call
    except ImportError:
        sys.exit("psola needs parselmouth, a probe's dependency only: pip install praat-parselmouth")

    snd = parselmouth.Sound(np.asarray(x, np.float64), sampling_frequency=16000)
    man = call(snd, "To Manipulation", 0.01, 75, 600)
    tier = call(man, "Extract pitch tier")
    call(tier, "Multiply frequencies", snd.xmin, snd.xmax, ratio)
    call([tier, man], "Replace pitch tier")
    y = call(man, "Get resynthesis (overlap-add)").values[0][: len(x)]
    return np.pad(y, (0, len(x) - len(y))).astype(np.float32)


class PsolaPitchAnonymiser(VoiceAnonymiser):
    """The product's method with its pitch step done by `praat_psola` on a band-limited input:
    the same draws and selection, then PSOLA by the chosen ratio, then the envelope steps on the
    shifted signal in the usual STFT pass with the excitation unscaled (twenty-seventh round)."""

    name = "earshot-psola"

    def anonymise(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from earshot.pipeline.voice import _speech_and_edge

        c = self.config
        x = np.nan_to_num(np.asarray(audio, dtype=np.float64).ravel())
        if x.size < 2 * c.n_fft or np.max(np.abs(x)) < 1e-6:
            return super().anonymise(audio, rng)
        f0 = median_f0(x, c.voicing_threshold)
        draws = [self._draw(rng, f0) for _ in range(c.candidates)]
        bin_hz = 16000 / c.n_fft
        spec, power, env = self._analyse(x)
        speech, edge = _speech_and_edge(power, env, bin_hz, c.band_empty_db)
        p = self._select(draws, power, env, speech, bin_hz, edge)
        if edge is None:  # full band: the product's own pitch step
            return self._render(x, spec, env, speech, p, edge, p.pitch_ratio)
        spec, _, env = self._analyse(praat_psola(x, p.pitch_ratio).astype(np.float64))
        return self._render(x, spec, env, speech, p, edge, 1.0)


class HighUpAnonymiser(VoiceAnonymiser):
    """The product's method, but a voice over 160 Hz has its pitch shifted up by a uniform
    `up` semitones instead of to the usual (lower) target (twenty-seventh round)."""

    name = "earshot-high-up"

    def __init__(self, up: tuple[float, float]) -> None:
        super().__init__()
        self.up = up

    def _draw(self, rng: np.random.Generator, src_f0: float | None) -> _Draw:
        d = super()._draw(rng, src_f0)
        u = rng.uniform()  # one more value per draw, either way
        if src_f0 is None or src_f0 <= 160.0:
            return d
        semitones = self.up[0] + u * (self.up[1] - self.up[0])
        return dataclasses.replace(d, pitch_ratio=float(2 ** (semitones / 12)))


def world_resynth(x: np.ndarray, mode: str) -> np.ndarray:
    """`x` through WORLD (pyworld: DIO + StoneMask F0, CheapTrick envelope, D4C aperiodicity,
    synthesis): the same F0 contour and envelope over a synthetic pulse-and-noise excitation. A
    probe for `--world` (pyworld is not a dependency; about 25x real time here)."""
    try:
        import pyworld as pw
    except ImportError:
        sys.exit("--world needs pyworld, a probe's dependency only: .venv/bin/pip install pyworld")

    xd = np.asarray(x, np.float64)
    f0, t = pw.dio(xd, 16000, frame_period=5.0)
    f0 = pw.stonemask(xd, f0, t, 16000)
    sp = pw.cheaptrick(xd, f0, t, 16000)
    ap = pw.d4c(xd, f0, t, 16000)
    if mode == "ap-flat":  # voiced frames: one generic aperiodicity curve, rising with frequency
        f = np.linspace(0, 8000, ap.shape[1])
        generic = np.clip(10 ** ((-35 + 25 * f / 8000) / 20), 0.0, 1.0)
        ap = np.where(f0[:, None] > 0, generic[None, :], ap)
    y = pw.synthesize(f0, sp, ap, 16000, 5.0)[: len(xd)]
    y = np.pad(y, (0, len(xd) - len(y)))
    rms_in, rms_out = np.sqrt(np.mean(xd**2)), np.sqrt(np.mean(y**2))
    return (y * (rms_in / rms_out if rms_out > 0 else 1.0)).astype(np.float32)


def time_stretch(x: np.ndarray, rate: float, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Phase-vocoder time scaling (rate > 1: faster, shorter), pitch and formants kept. A probe
    for `--tempo`, not part of the product (its output would no longer line up with the
    redaction spans and word timings)."""
    from earshot.pipeline.voice_dsp import istft, stft

    spec = stft(np.asarray(x, np.float64), n_fft, hop)
    steps = np.arange(0, len(spec) - 1, rate)
    omega = 2 * np.pi * hop * np.arange(spec.shape[1]) / n_fft
    phase = np.angle(spec[0])
    out = np.empty((len(steps), spec.shape[1]), complex)
    for j, t in enumerate(steps):
        i, frac = int(t), t - int(t)
        mag = (1 - frac) * np.abs(spec[i]) + frac * np.abs(spec[i + 1])
        out[j] = mag * np.exp(1j * phase)
        dphi = np.angle(spec[i + 1]) - np.angle(spec[i]) - omega
        phase = phase + omega + (dphi - 2 * np.pi * np.round(dphi / (2 * np.pi)))
    y = istft(out, int(round(len(x) / rate)), n_fft, hop)
    return y.astype(np.float32)


def random_tempo(x: np.ndarray, spread: float, rng: np.random.Generator) -> np.ndarray:
    """`x` time-scaled by a log-uniform random rate within 1/(1+spread)..1+spread."""
    return time_stretch(x, float(np.exp(rng.uniform(-1, 1) * np.log1p(spread))))


def recording_channel(x: np.ndarray, speaker: int) -> np.ndarray:
    """`x` as heard through speaker `speaker`'s own simulated recording chain, fixed per speaker
    as a phone and a room are for one caller: a small room (exponential-decay reverb, RT60
    0.1-0.5 s, direct-to-reverberant 0-10 dB), a smooth +-6 dB colouring, and a noise floor of
    its own colour at 15-40 dB under the speech. A probe for `--channel` (the tuning actors
    share one studio, so their channel cannot link them; real callers' channels differ)."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng([4711, speaker])
    rt60, drr_db, snr_db = rng.uniform(0.1, 0.5), rng.uniform(0.0, 10.0), rng.uniform(15.0, 40.0)
    eq_w, noise_w = rng.standard_normal(3), rng.standard_normal(3)
    n_ir = int(16000 * rt60)
    tail = rng.standard_normal(n_ir) * np.exp(-6.9 * np.arange(n_ir) / n_ir)
    tail *= 10 ** (-drr_db / 20) / np.sqrt(np.sum(tail**2))
    ir = np.concatenate([[1.0], tail])
    y = fftconvolve(np.asarray(x, np.float64), ir)[: len(x)]

    def colour(sig: np.ndarray, w: np.ndarray, db: float) -> np.ndarray:
        spec = np.fft.rfft(sig)
        f = np.maximum(np.fft.rfftfreq(len(sig), 1 / 16000), 50.0)
        u = np.log(f / 50.0) / np.log(160.0)
        gain_db = db * (w @ np.cos(np.pi * np.outer(np.arange(1, 4), u))) / np.sqrt(1.5)
        return np.fft.irfft(spec * 10 ** (gain_db / 20), len(sig))

    y = colour(y, eq_w, 6.0 / 2)
    frames = y[: len(y) // 400 * 400].reshape(-1, 400)
    level = np.sqrt(np.percentile((frames**2).mean(axis=1), 95))
    noise = colour(rng.standard_normal(len(y)), noise_w, 8.0)
    noise *= level * 10 ** (-snr_db / 20) / np.sqrt(np.mean(noise**2))
    return (y + noise).astype(np.float32)


def eer(
    e_enrol: np.ndarray, e_trial: np.ndarray, spk: np.ndarray, enrol: np.ndarray, trial: np.ndarray
) -> float:
    tr = score_trials(e_enrol, e_trial, spk, enrol, trial)
    return compute_eer(tr.target, tr.nontarget).eer


def same_gender_nontarget(
    e_enrol: np.ndarray,
    e_trial: np.ndarray,
    spk: np.ndarray,
    male: np.ndarray,
    enrol: np.ndarray,
    trial: np.ndarray,
    tr: object,
) -> float:
    """Ignorant EER when the non-target trials are restricted to the trial speaker's gender."""
    models = sorted(set(spk[enrol]))
    t_male = male[trial]
    m_male = male_actors(models)
    same = spk[trial][:, None] == np.asarray(models)[None, :]
    gender = t_male[:, None] == m_male[None, :]
    emb_t = e_trial[trial] / np.linalg.norm(e_trial[trial], axis=1, keepdims=True)
    mods = np.stack([e_enrol[enrol & (spk == m)].mean(0) for m in models])
    mods /= np.linalg.norm(mods, axis=1, keepdims=True)
    scores = emb_t @ mods.T
    return compute_eer(scores[same], scores[~same & gender]).eer


if __name__ == "__main__":
    main()
