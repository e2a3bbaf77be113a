"""Signal-processing building blocks of the voice anonymiser, vectorised over STFT frames.

Everything works on one short-time Fourier transform of the snippet:
- `stft` / `istft`: Hann-windowed analysis and weighted overlap-add synthesis;
- `cepstral_envelope`: smooth log-magnitude spectral envelope per frame (low-quefrency lifter);
- `frame_f0`: per-frame fundamental frequency and voicing from the normalised autocorrelation;
- `warp_bins`: linear interpolation of per-frame spectra along a frequency mapping;
- `scale_excitation`: phase-vocoder pitch scaling of the excitation (frequency-domain, keeps
  duration and bandwidth; per-frame factors allowed).
"""

from __future__ import annotations

import numpy as np

N_FFT = 256
HOP = 128


def stft(x: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Complex STFT (frames, bins) of `x`, centred frames, zero-padded ends."""
    pad = n_fft // 2
    n_frames = int(np.ceil(len(x) / hop)) + 1
    buf = np.zeros((n_frames - 1) * hop + n_fft, dtype=np.float64)
    buf[pad : pad + len(x)] = x
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    return np.fft.rfft(buf[idx] * np.hanning(n_fft + 1)[:-1], axis=1)


def istft(spec: np.ndarray, length: int, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Inverse of `stft` by weighted overlap-add (Hann synthesis window, squared-window norm)."""
    win = np.hanning(n_fft + 1)[:-1]
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * win
    n_frames = frames.shape[0]
    total = (n_frames - 1) * hop + n_fft
    out = np.zeros(total + n_fft)
    norm = np.zeros(total + n_fft)
    step = n_fft // hop  # frames i, i+step, ... tile the signal without overlap
    w2 = np.tile(win**2, 1)
    for i in range(step):
        part = frames[i::step]
        if not len(part):
            continue
        start = i * hop
        out[start : start + part.size] += part.reshape(-1)
        norm[start : start + part.size] += np.tile(w2, len(part))
    pad = n_fft // 2
    y = out[pad : pad + length] / np.maximum(norm[pad : pad + length], 1e-3)
    return y


def cepstral_envelope(log_mag: np.ndarray, lifter: int, iterations: int = 0) -> np.ndarray:
    """Smooth log-magnitude envelope of each frame: keep the first `lifter` cepstral terms.

    With `iterations` > 0 it is pushed up onto the spectral peaks ("true envelope", Roebel &
    Rodet): the smoothing is repeated on max(spectrum, previous envelope).
    """
    env = _lifter(log_mag, lifter)
    target = log_mag
    for _ in range(iterations):
        target = np.maximum(target, env)
        env = _lifter(target, lifter)
    return env


def _lifter(log_mag: np.ndarray, lifter: int) -> np.ndarray:
    ceps = np.fft.irfft(log_mag, axis=1)
    n = ceps.shape[1]
    keep = np.zeros(n)
    keep[:lifter] = 1.0
    keep[n - lifter + 1 :] = 1.0
    keep[lifter - 1] = keep[n - lifter + 1] = 0.5
    return np.fft.rfft(ceps * keep, axis=1).real


def frame_f0(
    power: np.ndarray, sr: int, fmin: float = 60.0, fmax: float = 450.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame F0 (Hz) and voicing strength (0..1) from the power spectrum's autocorrelation.

    The autocorrelation is normalised by that of the analysis window so long lags are not
    penalised; strength is the height of the best peak relative to lag 0.
    """
    n_fft = 2 * (power.shape[1] - 1)
    ac = np.fft.irfft(power, axis=1)
    win = np.hanning(n_fft + 1)[:-1]
    wac = np.fft.irfft(np.abs(np.fft.rfft(win, n=2 * n_fft)) ** 2)[:n_fft]
    lo, hi = int(sr / fmax), int(sr / fmin)
    norm_ac = ac[:, lo:hi] / (wac[lo:hi] / wac[0]) / np.maximum(ac[:, :1], 1e-12)
    best = np.argmax(norm_ac, axis=1)
    strength = norm_ac[np.arange(len(best)), best]
    # parabolic refinement of the lag
    y0 = norm_ac[np.arange(len(best)), np.clip(best - 1, 0, None)]
    y2 = norm_ac[np.arange(len(best)), np.clip(best + 1, None, norm_ac.shape[1] - 1)]
    denom = y0 - 2 * strength + y2
    delta = np.where(np.abs(denom) > 1e-9, 0.5 * (y0 - y2) / np.where(denom == 0, 1, denom), 0.0)
    lag = lo + best + np.clip(delta, -0.5, 0.5)
    return sr / lag, np.clip(strength, 0.0, 1.0)


def warp_bins(values: np.ndarray, src_pos: np.ndarray) -> np.ndarray:
    """Sample each frame of `values` (frames, bins) at fractional bin positions `src_pos`.

    `src_pos` is (bins,) for one mapping or (frames, bins) per frame; positions past the last
    bin are clamped to it.
    """
    n_bins = values.shape[1]
    pos = np.clip(src_pos, 0.0, n_bins - 1.0)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_bins - 1)
    frac = pos - i0
    if pos.ndim == 1:
        return values[:, i0] * (1.0 - frac) + values[:, i1] * frac
    rows = np.arange(values.shape[0])[:, None]
    return values[rows, i0] * (1.0 - frac) + values[rows, i1] * frac


def _princarg(phase: np.ndarray) -> np.ndarray:
    return (phase + np.pi) % (2 * np.pi) - np.pi


def _nearest_peak(mag: np.ndarray) -> np.ndarray:
    """For every bin, the index of the spectral peak whose region it belongs to (per frame)."""
    n_frames, n_bins = mag.shape
    k = np.arange(n_bins)
    left_ok = np.concatenate([np.ones((n_frames, 1), bool), mag[:, 1:] > mag[:, :-1]], axis=1)
    right_ok = np.concatenate([mag[:, :-1] >= mag[:, 1:], np.ones((n_frames, 1), bool)], axis=1)
    peak = left_ok & right_ok
    before = np.maximum.accumulate(np.where(peak, k, -1), axis=1)
    after = np.minimum.accumulate(np.where(peak, k, n_bins)[:, ::-1], axis=1)[:, ::-1]
    before = np.where(before < 0, after, before)
    after = np.where(after >= n_bins, before, after)
    return np.where(k - before <= after - k, before, after)


def _pitch_source_bins(n_bins: int, ratio: np.ndarray | float, edge: float | None = None) -> np.ndarray:
    """Source bin k/ratio of every output bin (`ratio` scalar or (frames,)).

    Sources past the input's band edge (Nyquist unless `edge` names a lower bin) are folded
    back below it, so a band-limited recording never lends its empty band as excitation.
    """
    top = float(n_bins - 1 if edge is None else min(edge, n_bins - 1))
    src = np.arange(n_bins) / np.asarray(ratio, dtype=np.float64)[..., None]
    out = np.where(src <= top, src, 2 * top - src)  # reflected once at the edge
    beyond = src > 2 * top  # only below a band edge: a reflection is not enough
    if beyond.any():
        out[beyond] = top - np.abs(np.mod(src[beyond], 2 * top) - top)  # folded into [0, top]
    return out


def scaled_log_excitation(log_exc: np.ndarray, ratio: float, edge: float | None = None) -> np.ndarray:
    """Log-magnitude excitation read at bin k/ratio, as `scale_excitation` does: no phases."""
    return warp_bins(log_exc, _pitch_source_bins(log_exc.shape[1], ratio, edge))


def scale_excitation(
    spec: np.ndarray, log_env: np.ndarray, ratio: np.ndarray, hop: int = HOP, edge: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pitch-scale the excitation (spectrum / envelope) of each frame by `ratio` (frames,).

    Returns (log-magnitude of the scaled excitation, phase) per frame and bin. Magnitudes are
    read at bin k/ratio (reflected above Nyquist, where the excitation is noise-like). Phases
    follow the phase vocoder with identity phase locking (Laroche & Dolson): each source bin
    accumulates its instantaneous frequency times the ratio, and every bin in a peak's region
    keeps its original phase offset to that peak, so harmonics stay coherent in time and
    across bins.
    """
    n_frames, n_bins = spec.shape
    n_fft = 2 * (n_bins - 1)
    k = np.arange(n_bins)
    mag = np.abs(spec)
    log_exc = np.log(mag + 1e-10) - log_env
    phase = np.angle(spec)
    omega_bin = 2 * np.pi * k * hop / n_fft
    dphi = np.diff(phase, axis=0, prepend=phase[:1] - omega_bin)
    inst = omega_bin + _princarg(dphi - omega_bin)  # phase advance per hop, per source bin
    adv = inst * ratio[:, None]
    acc = np.cumsum(adv, axis=0) - adv[:1] + phase[:1]  # synthesis phase per source bin
    src = _pitch_source_bins(n_bins, ratio, edge)
    new_log_exc = warp_bins(log_exc, src)
    rows = np.arange(n_frames)[:, None]
    j = np.rint(src).astype(np.intp)
    pk = _nearest_peak(mag)[rows, j]
    new_phase = acc[rows, pk] + phase[rows, j] - phase[rows, pk]
    return new_log_exc, new_phase
