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

    pitch_mode: str = "target"  # "target": random target median F0; "follow": formant ** exponent
    pitch_follow: tuple[float, float] = (1.0, 1.0)  # exponent range for "follow"
    f0_target_hz: tuple[float, float] = (90.0, 250.0)  # log-uniform target median F0
    min_shift_semitones: float = 2.0  # target at least this far from the speaker's own F0
    max_up_semitones: float = 6.0  # larger upward shifts cost ASR accuracy (measured)
    max_down_semitones: float = 12.0
    formant_factor: tuple[float, float] = (0.88, 1.28)  # log-uniform frequency-axis warp
    formant_min_change: float = 1.06  # factor kept at least this far from 1 (either direction)
    formant_follow_pitch: float = 0.0  # extra warp = pitch ratio ** this
    formant_same_direction: bool = False  # formants move up when the pitch moves up
    ltas_removal: float = 1.0  # 0 keeps the speaker's average envelope, 1 replaces it
    coloration_db: float = 0.0  # std of a random smooth spectral coloration
    contrast: tuple[float, float] = (0.75, 1.3)  # log-uniform factor on envelope peak-to-valley
    lifter: int = 36  # cepstral terms kept for the envelope
    high_band_lifter: int = 0  # >0: above high_band_hz use an envelope this smooth
    high_band_hz: tuple[float, float] = (2500.0, 4000.0)  # crossfade band
    nonlinear_warp: float = 0.1  # std (log) of random per-band warp factors
    warp_drift: float = 0.0  # amplitude (log) of a slow random drift of the warp over time
    voicing_threshold: float = 0.45
    reverb_rt60_s: tuple[float, float] = (0.0, 0.0)  # synthetic room, RT60 drawn uniformly
    reverb_wet: float = 0.0  # wet level relative to dry (0 = off)
    chorus_voices: int = 0  # modulated-delay copies mixed in (0 = off)
    chorus_depth_ms: float = 6.0
    chorus_mix: float = 0.5
    tempo: tuple[float, float] = (1.0, 1.0)  # log-uniform speed factor (changes the length)
    n_fft: int = N_FFT
    hop: int = HOP


_ANCHORS_HZ = (0.0, 400.0, 1000.0, 1800.0, 2800.0, 4200.0, 8000.0)
_LOG_EPS = 1e-10


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def median_f0(x: np.ndarray, voicing_threshold: float = 0.45) -> float | None:
    """Median F0 (Hz) of the voiced, loud frames of `x`, or None when too few are voiced.

    Analysed at 8 kHz with 64 ms frames (long enough for 60 Hz voices), hop 32 ms: cheap.
    """
    y = x[: len(x) // 2 * 2].reshape(-1, 2).mean(axis=1)  # crude 2:1 decimation is enough here
    rate = SAMPLE_RATE // 2
    if len(y) < 512:
        return None
    power = np.abs(stft(y, 512, 256)) ** 2
    f0, strength = frame_f0(power, rate)
    frame_db = 10 * np.log10(power.sum(axis=1) + 1e-20)
    voiced = (frame_db > frame_db.max() - 30.0) & (strength > voicing_threshold)
    return float(np.median(f0[voiced])) if voiced.sum() >= 3 else None


def _uniform_excluding(u: float, lo: float, hi: float, gap: float) -> float:
    """Map u in [0, 1) uniformly onto [lo, hi] minus the open band (-gap, gap)."""
    a, b = max(lo, -gap), min(hi, gap)
    excl = max(0.0, b - a)
    t = lo + u * (hi - lo - excl)
    return float(t + excl if excl > 0 and t >= a else t)


def _draw_formant(rng: np.random.Generator, bounds: tuple[float, float], min_change: float) -> float:
    """Log-uniform factor in `bounds`, excluding (1/min_change, min_change) around 1."""
    u = rng.uniform()
    return float(np.exp(_uniform_excluding(u, np.log(bounds[0]), np.log(bounds[1]), np.log(min_change))))


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
        semi = np.log(2) / 12
        if src_f0 is not None:
            # shift (log) within the target range, the allowed up/down limits, and away from 0
            s = np.log(src_f0)
            shift_lo = max(lo - s, -c.max_down_semitones * semi)
            shift_hi = min(hi - s, c.max_up_semitones * semi)
            if shift_hi < shift_lo:  # speaker far outside the target range: nearest limit
                shift_lo = shift_hi = shift_lo if lo - s > 0 else shift_hi
            shift = _uniform_excluding(u, shift_lo, shift_hi, c.min_shift_semitones * semi)
            target = float(src_f0 * np.exp(shift))
        else:
            target = float(np.exp(lo + u * (hi - lo)))
        formant = _draw_formant(rng, c.formant_factor, c.formant_min_change)
        if c.formant_same_direction and src_f0 is not None:
            formant = float(np.exp(abs(np.log(formant)) * np.sign(np.log(target / src_f0))))
        return {
            "f0_target": target,
            "formant": formant,
            "color": rng.standard_normal(8),
            "fallback_ratio": _log_uniform(rng, 0.75, 1.33),
            "bands": rng.standard_normal(len(_ANCHORS_HZ)),
            "follow": float(rng.uniform(*c.pitch_follow)),
            "rt60": float(rng.uniform(*c.reverb_rt60_s)),
            "chorus": rng.uniform(0, 1, (max(c.chorus_voices, 1), 3)),
            "noise_seed": int(rng.integers(2**31)),
            "tempo": _log_uniform(rng, *c.tempo),
            "contrast": _log_uniform(rng, *c.contrast),
            "drift": rng.uniform(0, 2 * np.pi, 2),
        }

    def anonymise(self, audio: Audio, rng: np.random.Generator) -> Audio:
        """Return an anonymised copy of `audio` (float32 mono, same sample rate and length)."""
        x = np.asarray(audio, dtype=np.float64).ravel()
        if x.size < 2 * self.config.hop or not np.all(np.isfinite(x)) or np.max(np.abs(x)) < 1e-6:
            # too short to analyse, or silent: draw anyway (keeps rng use uniform), return silence-safe copy
            self._draw(rng, None)
            return np.nan_to_num(x).astype(np.float32)
        c = self.config
        n_fft, hop = c.n_fft, c.hop
        bin_hz = SAMPLE_RATE / n_fft
        x_in = x
        src_f0 = median_f0(x, c.voicing_threshold)
        p = self._draw(rng, src_f0)
        speed = 1.0
        if p["tempo"] != 1.0:
            x, speed = _resample_speed(x, p["tempo"])
        spec = stft(x, n_fft, hop)
        power = spec.real**2 + spec.imag**2
        log_mag = 0.5 * np.log(power + _LOG_EPS**2)
        env = cepstral_envelope(log_mag, c.lifter)
        frame_db = 10 * np.log10(power.sum(axis=1) + 1e-20)
        speech = frame_db > frame_db.max() - 35.0

        # 1. pitch: median F0 to the random target (or following the formant warp), tempo-corrected
        if c.pitch_mode == "follow":
            base = p["formant"] ** p["follow"]
        elif src_f0 is not None:
            base = p["f0_target"] / src_f0
        else:
            base = p["fallback_ratio"]
        ratio = np.full(len(spec), base / speed)
        new_log_exc, new_phase = scale_excitation(spec, env, ratio, hop)

        # 2. formants: warp the envelope along frequency (global, per band, slowly drifting)
        k = np.arange(env.shape[1])
        if c.high_band_lifter > 0:
            coarse = cepstral_envelope(log_mag, c.high_band_lifter)
            lo_b, hi_b = (f / bin_hz for f in c.high_band_hz)
            blend = np.clip((k - lo_b) / (hi_b - lo_b), 0.0, 1.0)
            env_for_warp = env * (1 - blend) + coarse * blend
        else:
            env_for_warp = env
        warp = p["formant"] * (base ** c.formant_follow_pitch if c.pitch_mode == "target" else 1.0)
        warp = warp / speed
        log_w = np.full(len(k), np.log(warp))
        if c.nonlinear_warp > 0:
            anchors = np.asarray(_ANCHORS_HZ) / bin_hz
            log_w = log_w + np.interp(k, anchors, c.nonlinear_warp * p["bands"])
        src = k[None, :] * np.exp(-log_w)[None, :]
        if c.warp_drift > 0:
            t = np.arange(len(spec)) * hop / SAMPLE_RATE
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
            adjust = -c.ltas_removal * (shape - _generic_shape(k, bin_hz))
            if c.coloration_db > 0:
                q = np.arange(1, 9)[:, None] * np.pi * k[None, :] / (len(k) - 1)
                color_db = (p["color"][:, None] * np.cos(q) / np.sqrt(8)).sum(axis=0)
                adjust = adjust + c.coloration_db * color_db * np.log(10) / 20
            new_env = new_env + adjust[None, :]

        if p["contrast"] != 1.0:
            level = new_env.mean(axis=1, keepdims=True)
            new_env = level + p["contrast"] * (new_env - level)
        out_spec = np.exp(new_log_exc + new_env) * np.exp(1j * new_phase)
        y = istft(out_spec, len(x), n_fft, hop)
        if c.chorus_voices > 0:
            y = _chorus(y, p["chorus"], c.chorus_depth_ms, c.chorus_mix)
        if c.reverb_wet > 0 and p["rt60"] > 0:
            y = _reverb(y, p["rt60"], c.reverb_wet, np.random.default_rng(p["noise_seed"]))
        rms_in = np.sqrt(np.mean(x_in**2))
        rms_out = np.sqrt(np.mean(y**2))
        if rms_out > 0:
            y *= rms_in / rms_out
        peak = np.max(np.abs(y))
        if peak > 0.99:
            y *= 0.99 / peak
        return y.astype(np.float32)


def _resample_speed(x: np.ndarray, speed: float) -> tuple[np.ndarray, float]:
    """Play `x` `speed` times faster (pitch, formants and tempo all scale); returns the exact factor."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    frac = Fraction(speed).limit_denominator(40)
    y = resample_poly(x, frac.denominator, frac.numerator)
    return y, frac.numerator / frac.denominator


def _chorus(y: np.ndarray, draws: np.ndarray, depth_ms: float, mix: float) -> np.ndarray:
    """Mix in copies read through slowly modulated delays (0.5-2 Hz LFOs, random phases)."""
    n = np.arange(len(y), dtype=np.float64)
    out = y.copy()
    depth = depth_ms * SAMPLE_RATE / 1000
    for rate_u, phase_u, base_u in draws:
        lfo_hz = 0.5 + 1.5 * rate_u
        lfo = np.sin(2 * np.pi * (lfo_hz * n / SAMPLE_RATE + phase_u))
        delay = depth * (0.6 + 0.4 * base_u) * (1 + lfo) / 2
        out += mix / len(draws) * np.interp(n - delay - 1.0, n, y, left=0.0)
    return out


def _reverb(y: np.ndarray, rt60: float, wet: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room: exponentially decaying noise tail of the given RT60."""
    from scipy.signal import fftconvolve

    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail[: int(0.005 * SAMPLE_RATE)] = 0.0  # direct path arrives first
    tail *= wet / np.sqrt(np.sum(tail**2) + 1e-12)
    return y + fftconvolve(y, tail)[: len(y)]


def _generic_shape(k: np.ndarray, bin_hz: float) -> np.ndarray:
    """Generic long-term envelope shape (natural log units, zero mean): a gentle speech tilt."""
    hz = np.maximum(k * bin_hz, 100.0)
    db = -6.0 * np.log2(hz / 500.0) * (hz > 500.0)
    shape = db * np.log(10) / 20
    return shape - shape.mean()


__all__ = ["AnonymiserConfig", "McAdamsAnonymiser", "VoiceAnonymiser"]
