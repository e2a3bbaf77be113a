"""Behaviour of the voice anonymisers: per-snippet randomness, shape, sanity of the output."""

from __future__ import annotations

import numpy as np
import pytest

from earshot.evaluation.manifest import telephone_band
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
    from earshot.pipeline.voice import AnonymiserConfig, median_f0

    x = _voice_like(seconds=2.0, f0=120.0)
    anon = VoiceAnonymiser(AnonymiserConfig(hp_cutoff_hz=(0.0, 0.0)))  # F0 measurable on the output
    src = median_f0(x.astype(np.float64))
    assert src is not None and abs(12 * np.log2(src / 120.0)) < 1.0
    shifts = []
    for seed in range(6):
        y = anon.anonymise(x, np.random.default_rng(seed))
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


def test_formant_scale_moves_toward_and_past_the_middle() -> None:
    """A low (male-like) voice gets its formants raised, a high one lowered, by varying amounts."""
    from earshot.pipeline.voice import AnonymiserConfig

    # only the global warp of one draw, so the measured scale is the drawn one
    cfg = AnonymiserConfig(
        ltas_removal=0.0, nonlinear_warp=0.0, hp_cutoff_hz=(0.0, 0.0), away_mix=0.0, candidates=1
    )
    scales = {}
    for f0 in (105.0, 220.0):
        x = _voice_like(seconds=2.0, f0=f0)
        scales[f0] = np.array(
            [_formant_scale(VoiceAnonymiser(cfg).anonymise(x, np.random.default_rng(s)), x) for s in range(8)]
        )
    assert np.all(scales[105.0] > 1.08) and np.all(scales[220.0] < 0.95)
    # raising is cheap for ASR, so its size varies; lowering is held near its limit (0.85)
    assert np.ptp(np.log(scales[105.0])) > 0.05


def test_formant_direction_is_set_by_the_voice_and_random_near_the_middle() -> None:
    """Drawn warp factors: up for low voices, down for high ones, either way in the middle;
    with the default mix, a share of snippets moves mildly the other way instead."""
    from earshot.pipeline.voice import AnonymiserConfig

    voices = (95.0, 160.0, 240.0)
    for mix in (0.0, AnonymiserConfig().away_mix):
        anon = VoiceAnonymiser(AnonymiserConfig(away_mix=mix))
        lo, hi = anon.config.formant_factor
        draws = {
            f0: np.array([anon._draw(np.random.default_rng(s), f0).formant for s in range(400)])
            for f0 in voices
        }
        assert np.all((draws[160.0] >= lo) & (draws[160.0] <= hi))
        assert draws[160.0].min() < 0.9 and draws[160.0].max() > 1.1
        edge = anon.config.formant_move[0] - 0.01
        main_low, main_high = np.mean(draws[95.0] > edge), np.mean(draws[240.0] < 1 / edge)
        if mix == 0.0:
            assert main_low == 1.0 and main_high == 1.0
        else:
            assert abs(main_low - (1 - mix)) < 0.08 and abs(main_high - (1 - mix)) < 0.08
            other = draws[95.0][draws[95.0] <= edge]
            assert np.all((other < 1.0) & (other > 0.88))  # mild, the other way
    no_f0 = [anon._draw(np.random.default_rng(s), None).formant for s in range(50)]
    assert min(no_f0) < 1.0 < max(no_f0)  # no usable F0: a random direction, never a crash


def _ltas_db(y: np.ndarray) -> np.ndarray:
    from earshot.pipeline.voice_dsp import stft

    return 10 * np.log10(np.mean(np.abs(stft(y.astype(np.float64))) ** 2, axis=0) + 1e-20)


def test_random_average_envelope_differs_per_snippet() -> None:
    """Same draws otherwise: the random pseudo-speaker envelope reshapes the spectrum by dBs."""
    from earshot.pipeline.voice import AnonymiserConfig

    x = _voice_like(seconds=2.0)
    hz = np.arange(129) * SAMPLE_RATE / 256
    band = (hz > 300) & (hz < 7000)
    plain = VoiceAnonymiser(AnonymiserConfig(ltas_random_db=0.0))
    diffs = []
    for seed in range(3):  # same generator: every other parameter is drawn identically
        d = _ltas_db(VoiceAnonymiser().anonymise(x, np.random.default_rng(seed)))
        d -= _ltas_db(plain.anonymise(x, np.random.default_rng(seed)))
        diffs.append(d[band] - np.mean(d[band]))
        assert np.std(diffs[-1]) > 1.5
    assert np.std(diffs[0] - diffs[1]) > 1.5  # a different shape per snippet


def test_high_pass_thins_the_lowest_band_only() -> None:
    from earshot.pipeline.voice import AnonymiserConfig

    x = _voice_like(seconds=2.0, f0=110.0)
    hz = np.arange(129) * SAMPLE_RATE / 256
    low, mid = (hz > 60) & (hz < 150), (hz > 1000) & (hz < 3000)
    off = VoiceAnonymiser(AnonymiserConfig(hp_cutoff_hz=(0.0, 0.0)))
    on = VoiceAnonymiser(AnonymiserConfig(hp_cutoff_hz=(400.0, 400.0)))
    d = _ltas_db(on.anonymise(x, np.random.default_rng(3)))
    d -= _ltas_db(off.anonymise(x, np.random.default_rng(3)))
    d -= np.mean(d[mid])
    assert np.mean(d[low]) < -10.0 and np.max(np.abs(d[mid])) < 2.0


def _ltas_distance(x: np.ndarray, y: np.ndarray) -> float:
    """RMS difference (dB) of the level-normalised long-term spectra of x and y."""
    hz = np.arange(129) * SAMPLE_RATE / 256
    band = (hz > 100) & (hz < 7000)
    d = _ltas_db(y)[band] - _ltas_db(x)[band]
    return float(np.std(d))


def test_candidate_selection_keeps_the_draw_that_moved_the_voice_farthest() -> None:
    """Of hand-made draws differing only by their high-pass corner, the largest thinning is kept.

    (The formant warp alone barely moves the *long-term* spectrum: the generic average envelope
    replaces it whatever the warp.)"""
    from earshot.pipeline.voice import AnonymiserConfig, _Draw
    from earshot.pipeline.voice_dsp import cepstral_envelope, stft

    anon = VoiceAnonymiser(AnonymiserConfig(candidates=3))
    c = anon.config
    x = _voice_like(seconds=1.5, f0=120.0).astype(np.float64)
    spec = stft(x, c.n_fft, c.hop)
    power = np.abs(spec) ** 2
    env = cepstral_envelope(0.5 * np.log(power + 1e-20), c.lifter)
    speech = np.ones(len(spec), bool)
    zeros = np.zeros(7), np.zeros(c.timbre_terms)

    def draw(formant: float, hp_hz: float) -> _Draw:
        return _Draw(pitch_ratio=1.0, formant=formant, bands=zeros[0], timbre=zeros[1], hp_hz=hp_hz)

    near, mid, far = draw(1.2, 0.0), draw(1.2, 250.0), draw(1.2, 600.0)
    bin_hz = SAMPLE_RATE / c.n_fft
    assert anon._select([near, mid, far], power, env, speech, bin_hz) is far
    assert anon._select([far, near, mid], power, env, speech, bin_hz) is far
    assert anon._select([near, mid], power, env, speech, bin_hz) is mid
    assert anon._select([near, mid, far], power, env, ~speech, bin_hz) is near  # no speech: first


def test_candidate_selection_moves_the_spectrum_farther_on_average() -> None:
    """Same seeds: keeping the farthest of several draws changes the long-term spectrum more."""
    from earshot.pipeline.voice import AnonymiserConfig

    x = _voice_like(seconds=2.0, f0=150.0)
    one = VoiceAnonymiser(AnonymiserConfig(candidates=1))
    many = VoiceAnonymiser(AnonymiserConfig(candidates=5))
    d_one = [_ltas_distance(x, one.anonymise(x, np.random.default_rng(s))) for s in range(8)]
    d_many = [_ltas_distance(x, many.anonymise(x, np.random.default_rng(s))) for s in range(8)]
    assert np.mean(d_many) > np.mean(d_one) + 0.5
    assert min(d_many) > 1.0  # never a near-copy of the input's spectrum


def test_a_voice_with_no_room_for_the_minimum_shift_goes_down_to_the_floor_not_up() -> None:
    """89 Hz: 4 semitones down would leave the 75-150 Hz target range; upward shifts cost ASR
    accuracy (measured), so the pitch goes to the 75 Hz floor instead of 3 semitones up."""
    from earshot.pipeline.voice import AnonymiserConfig

    down = VoiceAnonymiser()
    up = VoiceAnonymiser(AnonymiserConfig(down_when_boxed=False))
    for s in range(5):
        assert abs(89.0 * down._draw(np.random.default_rng(s), 89.0).pitch_ratio - 75.0) < 0.5
        assert up._draw(np.random.default_rng(s), 89.0).pitch_ratio > 1.0
    # a voice with room keeps its random draw at least 4 semitones away
    ratios = [down._draw(np.random.default_rng(s), 120.0).pitch_ratio for s in range(50)]
    assert max(ratios) < 2 ** (-4 / 12) + 1e-9 and np.ptp(ratios) > 0.02


def test_true_envelope_passes_ride_on_the_harmonic_peaks() -> None:
    from earshot.pipeline.voice_dsp import cepstral_envelope, stft

    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    x = sum(np.sin(2 * np.pi * 250 * h * t) / h for h in range(1, 20))  # resolved harmonics
    log_mag = 0.5 * np.log(np.abs(stft(x, 512, 128)[10:-10]) ** 2 + 1e-20)
    plain = cepstral_envelope(log_mag, 36)
    assert np.array_equal(plain, cepstral_envelope(log_mag, 36, 0))
    true_env = cepstral_envelope(log_mag, 36, 8)
    peaks = np.arange(1, 20) * 250 * 512 // SAMPLE_RATE  # harmonic bins
    below_plain = np.mean(log_mag[:, peaks] - plain[:, peaks])
    below_true = np.mean(log_mag[:, peaks] - true_env[:, peaks])
    assert below_true < below_plain - 0.3  # the plain envelope sits well under the peaks
    assert true_env.mean() > plain.mean()  # lifted overall, not only at the peaks


def _with_fricatives(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """`x` plus noise bursts up to 8 kHz, as consonants give real speech a top band."""
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(seed)
    t = np.arange(len(x)) / SAMPLE_RATE
    noise = sosfilt(butter(2, 2500, "highpass", fs=SAMPLE_RATE, output="sos"), rng.standard_normal(len(x)))
    bursts = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 4
    y = x + 0.05 * np.max(np.abs(x)) * noise * bursts
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def test_a_telephone_band_recording_keeps_its_empty_band_empty() -> None:
    """The generic envelope must not lift a band the recording never carried up to speech level
    (before: 4-8 kHz of a call came out 60 dB louder, as hiss over the whole top band)."""
    x = telephone_band(_with_fricatives(_voice_like(seconds=2.0, f0=140.0)))
    hz = np.arange(129) * SAMPLE_RATE / 256
    speech, empty = (hz > 300) & (hz < 3400), hz > 5500
    assert np.mean(_ltas_db(x)[empty]) < np.mean(_ltas_db(x)[speech]) - 40  # the input really is band-limited
    for seed in range(6):
        d = _ltas_db(VoiceAnonymiser().anonymise(x, np.random.default_rng(seed)))
        assert np.mean(d[empty]) < np.mean(d[speech]) - 25.0, seed


def test_a_full_band_recording_keeps_its_top_band() -> None:
    """The bandwidth rule leaves a recording that carries 4-8 kHz its top band."""
    from earshot.pipeline.voice import _band_edge
    from earshot.pipeline.voice_dsp import cepstral_envelope, stft

    x = _with_fricatives(_voice_like(seconds=2.0, f0=140.0))
    for y, expect_edge in ((x, None), (telephone_band(x), 4000.0)):
        power = np.abs(stft(np.asarray(y, dtype=np.float64))) ** 2
        env = cepstral_envelope(0.5 * np.log(power + 1e-20), 36)
        edge = _band_edge(env, SAMPLE_RATE / 256, VoiceAnonymiser().config.band_empty_db)
        if expect_edge is None:
            assert edge is None or edge * SAMPLE_RATE / 256 > 7000
        else:
            assert edge is not None and abs(edge * SAMPLE_RATE / 256 - expect_edge) < 600


@pytest.mark.parametrize("ratio", [0.5, 0.6, 0.8, 1.0, 1.2])
def test_the_pitch_shift_reads_its_excitation_inside_the_recorded_band(ratio: float) -> None:
    from earshot.pipeline.voice_dsp import _pitch_source_bins

    for edge in (None, 64.0, 100.0):
        src = _pitch_source_bins(129, ratio, edge)
        top = 128 if edge is None else edge
        assert src.min() >= 0 and src.max() <= top
        inside = np.arange(129) / ratio <= top
        assert np.allclose(src[inside], np.arange(129)[inside] / ratio)  # below the edge: k / ratio


def test_the_bandwidth_rule_leaves_full_band_speech_untouched() -> None:
    """Full-band speech comes out bit for bit as without the rule (every measured figure holds)."""
    from earshot.pipeline.voice import AnonymiserConfig

    x = _with_fricatives(_voice_like(seconds=2.0, f0=180.0))
    off = VoiceAnonymiser(AnonymiserConfig(band_empty_db=0.0))
    for seed in range(4):
        a = VoiceAnonymiser().anonymise(x, np.random.default_rng(seed))
        assert np.array_equal(a, off.anonymise(x, np.random.default_rng(seed)))


def test_a_band_limited_recording_draws_its_high_pass_corner_from_the_narrowband_range() -> None:
    """`hp_cutoff_narrow_hz` moves each draw's corner to the same relative place in its own range
    for a telephone-band recording (twentieth round), and leaves full-band speech bit for bit."""
    from earshot.pipeline.voice import AnonymiserConfig

    narrow = VoiceAnonymiser(AnonymiserConfig(hp_cutoff_narrow_hz=(250.0, 500.0)))
    moved = VoiceAnonymiser(AnonymiserConfig(hp_cutoff_hz=(250.0, 500.0)))
    wide = _with_fricatives(_voice_like(seconds=2.0, f0=120.0))
    tel = telephone_band(wide)
    for seed in range(3):
        a = narrow.anonymise(wide, np.random.default_rng(seed))
        assert np.array_equal(a, VoiceAnonymiser().anonymise(wide, np.random.default_rng(seed)))
        b = narrow.anonymise(tel, np.random.default_rng(seed))
        assert np.allclose(b, moved.anonymise(tel, np.random.default_rng(seed)), atol=1e-5)
        assert not np.allclose(b, VoiceAnonymiser().anonymise(tel, np.random.default_rng(seed)), atol=1e-3)


def test_band_edge_tells_a_telephone_recording_from_full_band_speech(say) -> None:  # noqa: ANN001
    """The rule the pipeline uses to ask its second opinion about every snippet of a call."""
    from earshot.pipeline.voice import band_edge_hz

    speech = say("Please call me tomorrow morning about the parcel.")
    assert band_edge_hz(speech) is None
    edge = band_edge_hz(telephone_band(speech))
    assert edge is not None and 3000.0 <= edge <= 5000.0
    assert band_edge_hz(np.zeros(SAMPLE_RATE, np.float32)) is None
    assert band_edge_hz(np.zeros(100, np.float32)) is None
    assert band_edge_hz(np.full(SAMPLE_RATE, np.nan, np.float32)) is None


def test_the_edge_knee_maps_the_band_edge_onto_itself() -> None:
    """A raise that would push a band-limited recording's top past its edge is squeezed above
    the knee instead; below the knee, and for a lowering warp, the warp is unchanged."""
    from earshot.pipeline.voice import _keep_edge

    k = np.arange(129, dtype=np.float64)
    edge = 64.0
    raised = _keep_edge(k / 1.25, edge, 0.7)
    assert np.allclose(raised[:44], k[:44] / 1.25)  # below the knee (0.7 x 64 = 44.8)
    assert raised[64] == pytest.approx(edge)  # the edge stays where it was
    assert np.all(np.diff(raised) >= 0)  # still a warp
    assert np.all(raised[65:] > edge)  # past the edge: still outside the band
    lowered = k / 0.87
    assert np.array_equal(_keep_edge(lowered, edge, 0.7), lowered)


@pytest.mark.parametrize("f0", [100.0, 120.0])
def test_a_formant_raise_does_not_widen_a_telephone_recordings_band(f0: float) -> None:
    """Raising the formants of a call moved its top 20 % past the 4 kHz edge, where the timbre
    step lifted it to speech level: a band up to 5-6 kHz of folded excitation, which the
    selection rewarded (twenty-second round). With the knee the band stays within a few hundred
    hertz of the input's (the resampler's roll-off just past the edge is still lifted)."""
    from earshot.pipeline.voice import AnonymiserConfig, band_edge_hz

    x = telephone_band(_with_fricatives(_voice_like(seconds=2.0, f0=f0)))
    edge_in = band_edge_hz(x)
    assert edge_in is not None
    raise_only = {"formant_move": (1.25, 1.25), "away_mix": 0.0, "candidates": 1}
    kept = VoiceAnonymiser(AnonymiserConfig(edge_knee=0.7, **raise_only))
    widened = VoiceAnonymiser(AnonymiserConfig(**raise_only))
    for seed in range(3):
        out = kept.anonymise(x, np.random.default_rng(seed))
        assert (band_edge_hz(out) or 8000.0) <= edge_in + 600.0, seed
        before = band_edge_hz(widened.anonymise(x, np.random.default_rng(seed)))
        assert (before or 8000.0) > edge_in + 1000.0, seed  # what the knee prevents


def test_the_edge_knee_leaves_full_band_speech_untouched() -> None:
    """Full-band speech comes out bit for bit as without the knee."""
    from earshot.pipeline.voice import AnonymiserConfig

    x = _with_fricatives(_voice_like(seconds=2.0, f0=110.0))
    knee = VoiceAnonymiser(AnonymiserConfig(edge_knee=0.7))
    off = VoiceAnonymiser(AnonymiserConfig(edge_knee=0.0))
    for seed in range(3):
        a = knee.anonymise(x, np.random.default_rng(seed))
        assert np.array_equal(a, off.anonymise(x, np.random.default_rng(seed)))
