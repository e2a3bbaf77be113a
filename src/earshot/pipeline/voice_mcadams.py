"""McAdams-coefficient voice anonymisation: the VoicePrivacy Challenge signal-processing baseline.

Kept as the reference point the product's anonymiser is measured against (`earshot eval`
reports both). Each 20 ms frame is LPC-analysed; the angles of the complex poles (the
formant frequencies) are raised to the power alpha, which moves formants non-linearly,
and the frame is resynthesised from its LPC residual. Vectorised over frames.
"""

from __future__ import annotations

import numpy as np

from earshot.pipeline.types import SAMPLE_RATE, Audio

_WIN = int(0.020 * SAMPLE_RATE)
_HOP = _WIN // 2
_ORDER = 20
_NFFT = 1024


def _frames(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Frames of `x` (zero-padded at the end) as a strided (n_frames, win) copy."""
    n = max(1, int(np.ceil(max(len(x) - win, 0) / hop)) + 1)
    padded = np.zeros((n - 1) * hop + win, dtype=np.float64)
    padded[: len(x)] = x
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    return padded[idx]


def lpc_batch(frames: np.ndarray, order: int) -> np.ndarray:
    """LPC polynomials [1, a1..ap] for each row of `frames` (Levinson-Durbin, vectorised)."""
    n_frames, win = frames.shape
    spec = np.fft.rfft(frames, n=2 * win, axis=1)
    r = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, : order + 1]
    r[:, 0] = r[:, 0] * (1.0 + 1e-9) + 1e-12  # white-noise floor keeps silent frames stable
    a = np.zeros((n_frames, order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):
        acc = r[:, i] + np.einsum("fj,fj->f", a[:, 1:i], r[:, i - 1 : 0 : -1])
        k = -acc / err
        a_prev = a[:, 1:i].copy()
        a[:, 1:i] = a_prev + k[:, None] * a_prev[:, ::-1]
        a[:, i] = k
        err = err * (1.0 - k**2)
    return a


def _poly_response(roots: np.ndarray, nfft: int) -> np.ndarray:
    """Frequency response of prod(1 - r z^-1) on the rfft grid, per frame."""
    w = np.exp(-1j * np.pi * np.arange(nfft // 2 + 1) / (nfft // 2))
    return np.prod(1.0 - roots[:, :, None] * w[None, None, :], axis=1)


def mcadams(audio: Audio, alpha: float) -> Audio:
    """Apply the McAdams transform with coefficient `alpha` (about 0.5-0.9 is usual)."""
    x = np.asarray(audio, dtype=np.float64)
    if len(x) < _WIN:
        return np.asarray(audio, dtype=np.float32).copy()
    window = np.sqrt(np.hanning(_WIN + 1)[:-1])  # periodic sqrt-Hann: analysis x synthesis = 1
    frames = _frames(x, _WIN, _HOP) * window
    a = lpc_batch(frames + 1e-9, _ORDER)
    # Poles from companion matrices, all frames at once.
    comp = np.zeros((len(a), _ORDER, _ORDER))
    comp[:, 0, :] = -a[:, 1:]
    comp[:, np.arange(1, _ORDER), np.arange(_ORDER - 1)] = 1.0
    poles = np.linalg.eigvals(comp)
    ang = np.angle(poles)
    cplx = np.abs(poles.imag) > 1e-9
    new_ang = np.where(cplx, np.sign(ang) * np.clip(np.abs(ang), 0, np.pi) ** alpha, ang)
    new_ang = np.clip(new_ang, -np.pi, np.pi)
    new_poles = np.abs(poles) * np.exp(1j * new_ang)
    # Residual filter A(z) and new synthesis 1/A'(z), applied in the frequency domain.
    spec = np.fft.rfft(frames, n=_NFFT, axis=1)
    ratio = _poly_response(poles, _NFFT) / _poly_response(new_poles, _NFFT)
    rec = np.fft.irfft(spec * ratio, n=_NFFT, axis=1)[:, :_WIN] * window
    out = np.zeros(len(rec) * _HOP + _WIN)
    for i in range(2):  # overlap-add in two vectorised passes: odd/even frames tile exactly
        part = rec[i::2].reshape(-1)
        out[i * _HOP : i * _HOP + len(part)] += part
    out = out[: len(x)]
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    in_peak = float(np.max(np.abs(x)))
    if peak > 0:
        out = out * (in_peak / peak)
    return out.astype(np.float32)


class McAdamsAnonymiser:
    """Baseline: McAdams transform with alpha drawn uniformly per snippet (never stored)."""

    name = "mcadams"

    def __init__(self, alpha_range: tuple[float, float] = (0.5, 0.9)) -> None:
        self.alpha_range = alpha_range

    def anonymise(self, audio: Audio, rng: np.random.Generator) -> Audio:
        """Return `audio` with its formants moved by a random McAdams coefficient."""
        alpha = float(rng.uniform(*self.alpha_range))
        return mcadams(audio, alpha)
