"""Voice anonymisation: the product's `VoiceAnonymiser` (method and figures: docs/deid-evaluation.md).

Per snippet, with parameters drawn from the caller's generator and never stored:
1. the pitch is moved to a random target median F0 (not a ratio of the speaker's own), with
   the intonation range scaled by a random factor - excitation pitch-scaled in the STFT
   domain by a phase vocoder, so duration and bandwidth are kept;
2. the spectral envelope (cepstral) is warped along frequency by a random formant factor;
3. the speaker's long-term average envelope is replaced by a generic one plus a random
   smooth coloration, which removes the timbre cues that survive a plain warp.
All of it is one STFT pass, vectorised over frames (a few ms per second of audio).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from earshot.pipeline.types import SAMPLE_RATE, Audio
from earshot.pipeline.voice_dsp import (
    HOP,
    N_FFT,
    cepstral_envelope,
    frame_f0,
    istft,
    scale_excitation,
    stft,
    warp_bins,
)
from earshot.pipeline.voice_mcadams import McAdamsAnonymiser


@dataclass(frozen=True)
class AnonymiserConfig:
    """Ranges the per-snippet parameters are drawn from (chosen by measurement)."""

    f0_target_hz: tuple[float, float] = (95.0, 230.0)  # log-uniform target median F0
    min_shift_semitones: float = 2.0  # target at least this far from the speaker's own F0
    intonation_scale: tuple[float, float] = (1.0, 1.0)  # factor on log-F0 excursions
    formant_factor: tuple[float, float] = (0.88, 1.14)  # log-uniform frequency-axis warp
    formant_follow_pitch: float = 0.0  # extra warp = pitch ratio ** this
    ltas_removal: float = 0.0  # 0 keeps the speaker's average envelope, 1 replaces it
    coloration_db: float = 0.0  # std of a random smooth spectral coloration
    lifter: int = 36  # cepstral terms kept for the envelope
    high_band_lifter: int = 0  # >0: above high_band_hz use an envelope this smooth
    high_band_hz: tuple[float, float] = (2500.0, 4000.0)  # crossfade band
    nonlinear_warp: float = 0.0  # std (log) of random per-band warp factors
    warp_drift: float = 0.0  # amplitude (log) of a slow random drift of the warp over time
    voicing_threshold: float = 0.45


_BIN_HZ = SAMPLE_RATE / N_FFT
_ANCHORS_HZ = (0.0, 400.0, 1000.0, 1800.0, 2800.0, 4200.0, 8000.0)
_LOG_EPS = 1e-10


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


class VoiceAnonymiser:
    """Change the voice of one snippet with parameters drawn from `rng` per call, never stored."""

    name = "earshot"

    def __init__(self, config: AnonymiserConfig | None = None) -> None:
        self.config = config or AnonymiserConfig()

    def _draw(self, rng: np.random.Generator, src_f0: float | None) -> dict[str, object]:
        """Draw every random parameter, always in the same order (reproducible per rng state)."""
        c = self.config
        lo, hi = np.log(c.f0_target_hz[0]), np.log(c.f0_target_hz[1])
        u = rng.uniform()
        gap = c.min_shift_semitones * np.log(2) / 12
        if src_f0 is not None and gap > 0:
            # uniform over [lo, hi] minus the band of +-gap around the speaker's own F0
            s = np.log(src_f0)
            a, b = max(lo, s - gap), min(hi, s + gap)
            excl = max(0.0, b - a)
            t = lo + u * (hi - lo - excl)
            target = float(np.exp(t + excl if excl > 0 and t >= a else t))
        else:
            target = float(np.exp(lo + u * (hi - lo)))
        return {
            "f0_target": target,
            "intonation": float(rng.uniform(*c.intonation_scale)),
            "formant": _log_uniform(rng, *c.formant_factor),
            "color": rng.standard_normal(8),
            "fallback_ratio": _log_uniform(rng, 0.75, 1.33),
            "bands": rng.standard_normal(len(_ANCHORS_HZ)),
            "drift": rng.uniform(0, 2 * np.pi, 2),
        }

    def anonymise(self, audio: Audio, rng: np.random.Generator) -> Audio:
        """Return an anonymised copy of `audio` (float32 mono, same sample rate and length)."""
        x = np.asarray(audio, dtype=np.float64).ravel()
        if x.size < 2 * HOP or not np.all(np.isfinite(x)) or np.max(np.abs(x)) < 1e-6:
            # too short to analyse, or silent: draw anyway (keeps rng use uniform), return silence-safe copy
            self._draw(rng, None)
            return np.nan_to_num(x).astype(np.float32)
        c = self.config
        spec = stft(x)
        power = spec.real**2 + spec.imag**2
        log_mag = 0.5 * np.log(power + _LOG_EPS**2)
        env = cepstral_envelope(log_mag, c.lifter)
        f0, strength = frame_f0(power, SAMPLE_RATE)
        frame_db = 10 * np.log10(power.sum(axis=1) + 1e-20)
        speech = frame_db > frame_db.max() - 35.0
        voiced = speech & (strength > c.voicing_threshold)
        src_f0 = float(np.median(f0[voiced])) if voiced.sum() >= 3 else None
        p = self._draw(rng, src_f0)

        # 1. pitch: per-frame ratio to the random target contour
        if src_f0 is not None:
            base = p["f0_target"] / src_f0
            dev = np.clip(np.log(f0 / src_f0), -0.7, 0.7)
            log_ratio = np.where(voiced, np.log(base) + (p["intonation"] - 1.0) * dev, np.log(base))
            log_ratio = np.convolve(np.pad(log_ratio, 2, mode="edge"), np.ones(5) / 5, "valid")
            ratio = np.exp(log_ratio)
        else:
            base = p["fallback_ratio"]
            ratio = np.full(len(spec), base)
        new_log_exc, new_phase = scale_excitation(spec, env, ratio)

        # 2. formants: warp the envelope along frequency (global, per band, slowly drifting)
        k = np.arange(env.shape[1])
        if c.high_band_lifter > 0:
            coarse = cepstral_envelope(log_mag, c.high_band_lifter)
            lo_b, hi_b = (f / _BIN_HZ for f in c.high_band_hz)
            blend = np.clip((k - lo_b) / (hi_b - lo_b), 0.0, 1.0)
            env_for_warp = env * (1 - blend) + coarse * blend
        else:
            env_for_warp = env
        warp = p["formant"] * base ** c.formant_follow_pitch
        log_w = np.full(len(k), np.log(warp))
        if c.nonlinear_warp > 0:
            anchors = np.asarray(_ANCHORS_HZ) / _BIN_HZ
            log_w = log_w + np.interp(k, anchors, c.nonlinear_warp * p["bands"])
        src = k[None, :] * np.exp(-log_w)[None, :]
        if c.warp_drift > 0:
            t = np.arange(len(spec)) * HOP / SAMPLE_RATE
            drift = c.warp_drift * (
                np.sin(2 * np.pi * t / 1.7 + p["drift"][0]) + np.sin(2 * np.pi * t / 0.9 + p["drift"][1])
            ) / 2
            src = src * np.exp(-drift)[:, None]
        else:
            src = src[0]
        # keep the mapping monotone so formants never swap order
        src = np.maximum.accumulate(src, axis=-1)
        new_env = warp_bins(env_for_warp, src)

        # 3. timbre: replace the average envelope shape by a generic one, add coloration
        if c.ltas_removal > 0 or c.coloration_db > 0:
            weights = np.where(speech, 1.0, 0.0)
            mean_env = (new_env * weights[:, None]).sum(axis=0) / max(weights.sum(), 1.0)
            shape = mean_env - mean_env.mean()
            adjust = -c.ltas_removal * (shape - _generic_shape(k))
            if c.coloration_db > 0:
                q = np.arange(1, 9)[:, None] * np.pi * k[None, :] / (len(k) - 1)
                color_db = (p["color"][:, None] * np.cos(q) / np.sqrt(8)).sum(axis=0)
                adjust = adjust + c.coloration_db * color_db * np.log(10) / 20
            new_env = new_env + adjust[None, :]

        out_spec = np.exp(new_log_exc + new_env) * np.exp(1j * new_phase)
        y = istft(out_spec, len(x))
        rms_in = np.sqrt(np.mean(x**2))
        rms_out = np.sqrt(np.mean(y**2))
        if rms_out > 0:
            y *= rms_in / rms_out
        peak = np.max(np.abs(y))
        if peak > 0.99:
            y *= 0.99 / peak
        return y.astype(np.float32)


def _generic_shape(k: np.ndarray) -> np.ndarray:
    """Generic long-term envelope shape (natural log units, zero mean): a gentle speech tilt."""
    hz = np.maximum(k * _BIN_HZ, 100.0)
    db = -6.0 * np.log2(hz / 500.0) * (hz > 500.0)
    shape = db * np.log(10) / 20
    return shape - shape.mean()


__all__ = ["AnonymiserConfig", "McAdamsAnonymiser", "VoiceAnonymiser"]
