"""Inaudible per-delivery audio watermark: keyed spread spectrum, shaped under the speech.

Why: every play of a snippet is a *delivery*; if a recording leaks, `earshot trace` must name the
delivery (hence the reviewer) it came from, also after MP3 re-encoding, a volume change and
trimming to a few seconds.

How (see docs/watermark.md for the reasoning and the measured figures):

* Each delivery has a payload (a random integer). HMAC(key, payload) seeds a Gaussian
  pseudo-noise sequence ``p`` of ``PERIOD`` samples (0.512 s), repeated over the whole snippet
  so that any piece of the recording carries whole periods of it.
* ``p`` is filtered, frame by frame in a short-time Fourier domain, so that in every time-frequency
  bin its magnitude is at most ``RATIO_CAP`` times the local (smoothed) speech spectrum and at most
  ``FRAME_LEVEL`` times the frame's mean bin level: it hides under the speech, is weakest where
  the speech is quiet, and keeps the signal-to-watermark ratio at or above ``MIN_SNR_DB``.
* Detection whitens the suspect audio with the same rule (weights = expected watermark amplitude
  over noise power per bin, a matched filter), folds it modulo ``PERIOD`` (so any trim offset
  becomes a circular lag) and correlates it with each candidate's sequence at every lag at once
  by FFT. For a wrong candidate the correlation at any lag, divided by the norm of the folded
  signal, is exactly standard normal (the sequence is independent Gaussian noise), so the false
  match probability of a trace is bounded by ``candidates * PERIOD * Q(z)``.

Volume changes cancel in the whitening; MP3 keeps the mid band where the mark lives; the trim
offset and codec delay are found by the lag search.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.fft as sfft
from scipy.special import log_ndtr

from earshot.pipeline.types import SAMPLE_RATE

N_FFT = 512
HOP = N_FFT // 2
PERIOD = 32 * HOP  # 8192 samples = 0.512 s at 16 kHz; a multiple of HOP
BAND_HZ = (150.0, 7000.0)
RATIO_CAP = 0.2  # watermark <= -14 dB under the local speech spectrum in every bin
FRAME_LEVEL = 0.03  # and <= -30.5 dB under the frame's mean bin level
MIN_SNR_DB = 30.0  # guaranteed signal-to-watermark ratio of the whole snippet
MIN_DETECT_S = 1.0  # below this there is too little audio to say anything
DEFAULT_MAX_FALSE_MATCH = 1e-9  # a trace names a delivery only if chance explains it less often
_BATCH = 256

# sqrt-Hann analysis and synthesis windows: with 50 % overlap they form a tight frame, so the
# short-time transform below is orthogonal-like (perfect reconstruction, Parseval holds).
_WIN = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
_FREQS = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
_BAND = (_FREQS >= BAND_HZ[0]) & (_FREQS <= BAND_HZ[1])
_LO, _HI = int(np.argmax(_BAND)), int(len(_BAND) - np.argmax(_BAND[::-1]))  # band = bins [_LO, _HI)
_PN_BIN_RMS = math.sqrt(float(np.sum(_WIN**2)))  # E|P(k,f)| of unit-variance white noise
_SMOOTH = np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0  # masking spread across neighbouring bins


@dataclass(frozen=True)
class Match:
    """One candidate's best correlation: z is in standard deviations of chance."""

    payload: int
    z: float
    lag: int  # position of the suspect audio within the watermark period, in samples
    false_match_probability: float  # chance that some wrong candidate scores this high (bound)


@dataclass(frozen=True)
class Detection:
    """The outcome of checking audio against candidate payloads."""

    match: Match | None  # the candidate named, when its score rules out chance
    best: Match | None  # the best candidate whether or not it passed
    candidates: int
    duration_s: float
    matches: list[Match] = field(default_factory=list)  # every candidate that passed, best first

    @property
    def found(self) -> bool:
        return self.match is not None


# -- keyed sequences -----------------------------------------------------------------------------
def _seed(key: bytes, payload: int) -> int:
    digest = hmac.new(key, b"earshot-watermark|v1|" + str(int(payload)).encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:16], "big")


def sequence(key: bytes, payload: int) -> np.ndarray:
    """The delivery's pseudo-noise period: PERIOD iid N(0, 1) samples seeded by HMAC(key, payload)."""
    rng = np.random.Generator(np.random.PCG64(_seed(key, payload)))
    return rng.standard_normal(PERIOD, dtype=np.float32)


# -- short-time transform ------------------------------------------------------------------------
def _frames(n: int) -> int:
    return -(-n // HOP) + 1


def _stft(x: np.ndarray) -> np.ndarray:
    """Frames k cover samples [k*HOP - HOP, k*HOP + HOP) of `x` (zero outside); complex64."""
    t = _frames(len(x))
    padded = np.zeros(HOP * (t + 1), dtype=np.float32)
    padded[HOP : HOP + len(x)] = x
    view = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    return sfft.rfft(view * _WIN, axis=1)


def _istft(spec: np.ndarray, n: int) -> np.ndarray:
    """Windowed overlap-add, the adjoint (and inverse) of `_stft`."""
    t = spec.shape[0]
    frames = sfft.irfft(spec, n=N_FFT, axis=1) * _WIN
    out = np.zeros(HOP * (t + 1), dtype=frames.dtype)
    out[: HOP * t] += frames[:, :HOP].reshape(-1)
    out[HOP : HOP * (t + 1)] += frames[:, HOP:].reshape(-1)
    return out[HOP : HOP + n]


def _mark_magnitude(spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In the band's bins: the watermark magnitude the masking rule allows, and the local power.

    Both are arrays over (frame, band bin); the rule depends only on ratios, so a volume change
    scales both alike and the detector recomputes the same weights from the suspect audio.
    """
    pad = len(_SMOOTH) // 2
    lo, hi = max(0, _LO - pad), min(spec.shape[1], _HI + pad)
    part = spec[:, lo:hi]
    power = part.real**2 + part.imag**2
    power = np.pad(power, ((0, 0), (pad - (_LO - lo), pad - (hi - _HI))), mode="edge")
    width = _HI - _LO
    smooth = _SMOOTH[0] * power[:, 0:width]
    for i in range(1, len(_SMOOTH)):
        smooth += _SMOOTH[i] * power[:, i : i + width]
    # Temporal: the mark follows the quieter of neighbouring frames (no pre-echo before onsets).
    quiet = smooth.copy()
    np.minimum(quiet[1:], smooth[:-1], out=quiet[1:])
    np.minimum(quiet[:-1], smooth[1:], out=quiet[:-1])
    frame_level = np.sqrt(quiet.mean(axis=1, keepdims=True))
    magnitude = np.minimum(RATIO_CAP * np.sqrt(quiet), FRAME_LEVEL * frame_level)
    return magnitude.astype(np.float32), smooth.astype(np.float32)


def _tiled_pn_spectrum(p: np.ndarray, frames: int) -> np.ndarray:
    """Band bins of the periodic sequence's short-time spectra, aligned with `_stft` frames."""
    per = PERIOD // HOP
    ext = np.concatenate([p[-HOP:], p, p[:HOP]])  # frame k starts at sample k*HOP - HOP
    view = np.lib.stride_tricks.sliding_window_view(ext, N_FFT)[::HOP][:per]
    spec = sfft.rfft(view * _WIN, axis=1)[:, _LO:_HI]
    reps = -(-frames // per)
    return np.tile(spec, (reps, 1))[:frames]


def _full(band: np.ndarray) -> np.ndarray:
    """Band bins placed into a full spectrum (zeros elsewhere)."""
    out = np.zeros((band.shape[0], N_FFT // 2 + 1), dtype=np.complex64)
    out[:, _LO:_HI] = band
    return out


# -- embedding -----------------------------------------------------------------------------------
def watermark_signal(audio: np.ndarray, payload: int, key: bytes) -> np.ndarray:
    """The additive mark for `audio` (float32), already scaled to keep SNR >= MIN_SNR_DB."""
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    if len(x) == 0:
        return np.zeros(0, dtype=np.float32)
    spec = _stft(x)
    magnitude, _ = _mark_magnitude(spec)
    pn = _tiled_pn_spectrum(sequence(key, payload), spec.shape[0])
    w = _istft(_full(pn * (magnitude / _PN_BIN_RMS)), len(x))
    signal_energy = float(np.sum(np.square(x, dtype=np.float64)))
    mark_energy = float(np.sum(np.square(w, dtype=np.float64)))
    limit = signal_energy * 10 ** (-MIN_SNR_DB / 10)
    if mark_energy > limit > 0:
        w *= math.sqrt(limit / mark_energy)
    return w


def embed(audio: np.ndarray, payload: int, key: bytes) -> np.ndarray:
    """`audio` (float32 mono 16 kHz) with the delivery's inaudible mark added; same length, float32."""
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    return np.clip(x + watermark_signal(x, payload, key), -1.0, 1.0)


def snr_db(original: np.ndarray, marked: np.ndarray) -> float:
    """Signal-to-watermark ratio in dB (the watermark being `marked - original`)."""
    x = np.asarray(original, dtype=np.float64)
    diff = np.asarray(marked, dtype=np.float64) - x
    noise = float(np.dot(diff, diff))
    return math.inf if noise == 0 else 10 * math.log10(float(np.dot(x, x)) / noise)


# -- detection -----------------------------------------------------------------------------------
def _folded_statistic(audio: np.ndarray) -> np.ndarray:
    """Matched-filtered, whitened audio folded modulo PERIOD (what every candidate is tested against)."""
    y = np.asarray(audio, dtype=np.float32).reshape(-1)
    spec = _stft(y)
    magnitude, smooth = _mark_magnitude(spec)
    floor = np.float32(1e-20 + 1e-6 * float(smooth.mean()))
    # Weight = expected mark amplitude / noise power in the bin (maximum-ratio combining).
    z = _istft(_full(spec[:, _LO:_HI] * (magnitude / (smooth + floor))), len(y)).astype(np.float64)
    folds = -(-len(z) // PERIOD)
    padded = np.zeros(folds * PERIOD)
    padded[: len(z)] = z
    return padded.reshape(folds, PERIOD).sum(axis=0)


def _log10_false_match(z: float, trials: int) -> float:
    """log10 of the union bound trials * Q(z) on a chance score of at least z."""
    return (math.log(trials) + float(log_ndtr(-z))) / math.log(10)


def threshold(candidates: int, max_false_match: float = DEFAULT_MAX_FALSE_MATCH) -> float:
    """The score a candidate needs among `candidates` so that chance explains it < max_false_match."""
    lo, hi = 0.0, 40.0
    trials = max(1, candidates) * PERIOD
    for _ in range(60):
        mid = (lo + hi) / 2
        if _log10_false_match(mid, trials) > math.log10(max_false_match):
            lo = mid
        else:
            hi = mid
    return hi


def detect(
    audio: np.ndarray,
    key: bytes,
    candidates: Iterable[int],
    *,
    max_false_match: float = DEFAULT_MAX_FALSE_MATCH,
) -> Detection:
    """Which candidate payload (if any) marked `audio` (float mono 16 kHz, any volume, any piece)."""
    payloads: Sequence[int] = list(dict.fromkeys(int(c) for c in candidates))
    y = np.asarray(audio, dtype=np.float32).reshape(-1)
    duration = len(y) / SAMPLE_RATE
    if not payloads or duration < MIN_DETECT_S or not np.any(y):
        return Detection(None, None, len(payloads), duration)
    folded = _folded_statistic(y)
    norm = math.sqrt(float(np.sum(folded * folded)))
    if norm == 0.0:
        return Detection(None, None, len(payloads), duration)
    spectrum = np.conj(sfft.rfft(folded / norm)).astype(np.complex64)
    trials = len(payloads) * PERIOD
    scores = np.empty(len(payloads))
    lags = np.empty(len(payloads), dtype=np.int64)
    for start in range(0, len(payloads), _BATCH):
        batch = payloads[start : start + _BATCH]
        seqs = np.stack([sequence(key, p) for p in batch])
        corr = sfft.irfft(sfft.rfft(seqs, axis=1) * spectrum, n=PERIOD, axis=1)
        idx = np.argmax(corr, axis=1)
        scores[start : start + len(batch)] = corr[np.arange(len(batch)), idx]
        lags[start : start + len(batch)] = idx
    limit = threshold(len(payloads), max_false_match)
    order = np.argsort(-scores)

    def as_match(i: int) -> Match:
        z = float(scores[i])
        return Match(payloads[i], z, int(lags[i]), min(1.0, 10 ** _log10_false_match(z, trials)))

    best = as_match(int(order[0]))
    passed = [as_match(int(i)) for i in order if scores[i] >= limit]
    return Detection(passed[0] if passed else None, best, len(payloads), duration, passed)
