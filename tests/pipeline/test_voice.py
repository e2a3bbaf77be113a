"""Behaviour of the voice anonymisers: per-snippet randomness, shape, sanity of the output."""

from __future__ import annotations

import numpy as np
import pytest

from earshot.pipeline.types import SAMPLE_RATE
from earshot.pipeline.voice import McAdamsAnonymiser, VoiceAnonymiser


def _voice_like(seconds: float = 1.5, f0: float = 120.0, seed: int = 0) -> np.ndarray:
    """A crude voiced signal: a glottal-like pulse train through two formant resonances."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    phase = np.cumsum(2 * np.pi * f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t)) / SAMPLE_RATE)
    src = (np.sin(phase) > 0.95).astype(np.float64) + 0.01 * rng.standard_normal(n)
    y = src
    for freq, bw in ((700.0, 80.0), (1200.0, 100.0), (2600.0, 150.0)):
        r = np.exp(-np.pi * bw / SAMPLE_RATE)
        th = 2 * np.pi * freq / SAMPLE_RATE
        y = lfilter([1.0], [1.0, -2 * r * np.cos(th), r * r], y)
    y = y * np.hanning(n) ** 0.2
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


@pytest.mark.parametrize("anon", [VoiceAnonymiser(), McAdamsAnonymiser()], ids=lambda a: a.name)
def test_output_is_sane(anon) -> None:
    x = _voice_like()
    y = anon.anonymise(x, np.random.default_rng(1))
    assert y.dtype == np.float32 and y.ndim == 1
    assert np.all(np.isfinite(y))
    assert abs(len(y) - len(x)) <= 0.05 * len(x)
    assert np.sqrt(np.mean(y**2)) > 0.1 * np.sqrt(np.mean(x**2))
    assert np.max(np.abs(y)) <= 1.0


@pytest.mark.parametrize("anon", [VoiceAnonymiser(), McAdamsAnonymiser()], ids=lambda a: a.name)
def test_differs_per_snippet_same_speaker(anon) -> None:
    x = _voice_like()
    y1 = anon.anonymise(x, np.random.default_rng(1))
    y2 = anon.anonymise(x, np.random.default_rng(2))
    n = min(len(y1), len(y2))
    assert not np.allclose(y1[:n], y2[:n], atol=1e-3)
    # and it actually changed the voice
    m = min(len(x), len(y1))
    assert not np.allclose(x[:m], y1[:m], atol=1e-3)


def test_same_rng_state_is_deterministic() -> None:
    x = _voice_like()
    anon = VoiceAnonymiser()
    a = anon.anonymise(x, np.random.default_rng(7))
    b = anon.anonymise(x, np.random.default_rng(7))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("n", [0, 1, 100, 400])
def test_tiny_and_empty_inputs(n: int) -> None:
    x = np.zeros(n, dtype=np.float32)
    y = VoiceAnonymiser().anonymise(x, np.random.default_rng(0))
    assert y.dtype == np.float32 and np.all(np.isfinite(y))
    assert abs(len(y) - n) <= max(2, 0.05 * n)


def test_silence_stays_silent_and_finite() -> None:
    x = np.zeros(SAMPLE_RATE, dtype=np.float32)
    y = VoiceAnonymiser().anonymise(x, np.random.default_rng(0))
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) < 1e-3


def test_pitch_moves_to_a_different_target() -> None:
    from earshot.pipeline.voice import median_f0

    x = _voice_like(seconds=2.0, f0=120.0)
    src = median_f0(x.astype(np.float64))
    assert src is not None and abs(12 * np.log2(src / 120.0)) < 1.0
    shifts = []
    for seed in range(6):
        y = VoiceAnonymiser().anonymise(x, np.random.default_rng(seed))
        out = median_f0(y.astype(np.float64))
        assert out is not None
        shifts.append(12 * np.log2(out / src))
    # every snippet moved by at least ~2 semitones, and not all by the same amount
    assert min(abs(s) for s in shifts) > 1.5
    assert np.ptp(shifts) > 1.0


def test_non_finite_input_does_not_crash() -> None:
    x = _voice_like()
    x[100:200] = np.nan
    y = VoiceAnonymiser().anonymise(x, np.random.default_rng(0))
    assert np.all(np.isfinite(y)) and len(y) == len(x)


def _formant_scale(y: np.ndarray, x: np.ndarray) -> float:
    """Frequency scale that best maps the average envelope of `x` onto that of `y`."""
    from earshot.pipeline.voice_dsp import cepstral_envelope, stft, warp_bins

    def mean_env(z: np.ndarray) -> np.ndarray:
        p = np.abs(stft(z.astype(np.float64))) ** 2
        env = cepstral_envelope(0.5 * np.log(p + 1e-20), 36)
        db = 10 * np.log10(p.sum(axis=1) + 1e-20)
        return env[db > db.max() - 20].mean(axis=0)

    a, b = mean_env(y), mean_env(x)
    k = np.arange(len(a))
    band = (k > 4) & (k < 64)  # 250-4000 Hz
    scales = np.exp(np.linspace(-0.4, 0.4, 81))
    err = [np.var((warp_bins(b[None], k / s)[0] - a)[band]) for s in scales]
    return float(scales[int(np.argmin(err))])


def test_formant_scale_moves_toward_a_speaker_independent_target() -> None:
    """A low (male-like) voice gets its formants raised, a high one lowered, on average."""
    from earshot.pipeline.voice import AnonymiserConfig

    # only the global warp, so the measured scale is the drawn one
    cfg = AnonymiserConfig(ltas_removal=0.0, nonlinear_warp=0.0, contrast=(1.0, 1.0))
    means = {}
    for f0 in (105.0, 220.0):
        x = _voice_like(seconds=2.0, f0=f0)
        scales = [
            _formant_scale(VoiceAnonymiser(cfg).anonymise(x, np.random.default_rng(s)), x) for s in range(8)
        ]
        means[f0] = float(np.exp(np.mean(np.log(scales))))
        assert np.ptp(np.log(scales)) > 0.1  # a different scale per snippet
    assert means[105.0] > 1.1 and means[220.0] < 1.0


def test_formant_target_distribution_does_not_depend_on_the_speaker() -> None:
    """The drawn output scale (speaker's estimated scale x warp) has one distribution for all."""
    anon = VoiceAnonymiser()
    c = anon.config
    outs = {}
    for f0 in (100.0, 150.0, 230.0):
        own = c.vtl_gamma * np.log(f0 / 160.0)
        outs[f0] = np.array(
            [own + np.log(anon._draw(np.random.default_rng(s), f0).formant) for s in range(400)]
        )
    means = [o.mean() for o in outs.values()]
    assert np.ptp(means) < 0.04  # same target distribution, whatever the voice
    ratios = {f0: np.mean(o - c.vtl_gamma * np.log(f0 / 160.0)) for f0, o in outs.items()}
    assert ratios[100.0] > 0.1 and ratios[230.0] < 0.0  # ...reached by opposite warps


def test_random_average_envelope_changes_only_the_high_band() -> None:
    """The pseudo-speaker average envelope differs per snippet above ~2 kHz, not below."""
    from earshot.pipeline.voice import AnonymiserConfig
    from earshot.pipeline.voice_dsp import stft

    def ltas_db(y: np.ndarray) -> np.ndarray:
        return 10 * np.log10(np.mean(np.abs(stft(y.astype(np.float64))) ** 2, axis=0) + 1e-20)

    x = _voice_like(seconds=2.0)
    hz = np.arange(129) * SAMPLE_RATE / 256
    low, high = (hz > 200) & (hz < 1500), (hz > 3000) & (hz < 7500)
    plain = VoiceAnonymiser(AnonymiserConfig(ltas_random_db=0.0))
    for seed in range(3):  # same generator: every other parameter is drawn identically
        d = ltas_db(VoiceAnonymiser().anonymise(x, np.random.default_rng(seed)))
        d -= ltas_db(plain.anonymise(x, np.random.default_rng(seed)))
        d -= np.mean(d[low])  # loudness normalisation moves everything together
        assert np.max(np.abs(d[low])) < 1.5
        assert np.std(d[high]) > 2.0 or abs(np.mean(d[high])) > 3.0
