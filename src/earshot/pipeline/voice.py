"""Voice anonymisation: the product's `VoiceAnonymiser` (method and figures: docs/deid-evaluation.md).

Per snippet, with parameters drawn from the caller's generator and never stored:
1. pitch: the median F0 moves to a random target (not a ratio of the speaker's own F0); the
   excitation is pitch-scaled in the STFT domain by a phase-locked phase vocoder, so the
   duration and the bandwidth are kept;
2. formants: the cepstral spectral envelope is warped along frequency toward and past the
   middle vocal-tract scale (low voices up, high voices down, by a random amount; the
   speaker's own scale is estimated from its F0), plus a random per-band warp;
3. timbre: the snippet's long-term average envelope is replaced by a generic speech tilt
   plus a random smooth pseudo-speaker shape, and a random high-pass corner thins the band
   below a few hundred hertz, where the speaker embedding finds most of its identity; a band
   the recording does not carry (a telephone call's 4-8 kHz) is never lifted, and lends the
   pitch shift no excitation;
4. selection: steps 1-3 are drawn several times and the draw whose output's long-term mel
   spectrum (predicted from magnitudes only) is farthest from the input's is synthesised,
   so no snippet keeps a timbre close to the speaker's own by chance.
One STFT pass, vectorised over frames: a few ms of CPU per second of audio.
Parameter ranges were chosen by measurement (speaker-verification EER against ASR WER).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from earshot.pipeline.types import SAMPLE_RATE, Audio
from earshot.pipeline.voice_dsp import (
    HOP,
    N_FFT,
    cepstral_envelope,
    frame_f0,
    istft,
    scale_excitation,
    scaled_log_excitation,
    stft,
    warp_bins,
)
from earshot.pipeline.voice_mcadams import McAdamsAnonymiser


@dataclass(frozen=True)
class AnonymiserConfig:
    """Ranges the per-snippet parameters are drawn from (chosen by measurement)."""

    # pitch: a log-uniform target median F0, away from the speaker's own, within shift limits
    f0_target_hz: tuple[float, float] = (75.0, 150.0)
    min_shift_semitones: float = 4.0
    max_up_semitones: float = 3.0  # upward shifts cost ASR accuracy (measured)
    max_down_semitones: float = 12.0
    down_when_boxed: bool = True  # no room for the minimum shift: down to the floor, not up (WER)
    # formants: a warp toward and past the middle scale; the speaker's own (log) scale is
    # estimated as vtl_gamma x log(F0 / 160 Hz), the only cheap estimate that separated
    # speakers and genders on the tuning speakers
    vtl_gamma: float = 0.4
    formant_move: tuple[float, float] = (1.1, 1.3)  # size of the warp factor (log-uniform)
    formant_middle: float = 0.04  # |own log scale| below this: a random direction
    formant_factor: tuple[float, float] = (0.85, 1.35)  # hard limits (lowering costs WER)
    away_mix: float = 0.15  # probability of a mild move away from the middle instead (lazy EER;
    # 0.3 until the eighteenth round of docs/deid-evaluation.md)
    away_mild: tuple[float, float] = (1.03, 1.1)
    nonlinear_warp: float = 0.05  # std (log) of random per-band warp factors
    # timbre: generic average envelope + a random smooth shape, random high-pass corner
    ltas_removal: float = 1.0  # 0 keeps the speaker's average envelope, 1 replaces it
    # bandwidth: a band this far (dB) below the 0.3-3.4 kHz level lies outside what the recording
    # carries (a telephone call's 4-8 kHz); the timbre step never lifts it, and the pitch shift
    # takes no excitation from it (0: off)
    band_empty_db: float = 40.0
    # a band-limited recording's formant raise: above this fraction of the band edge the warp
    # is compressed so the edge maps onto itself and the top of the band is not pushed out of
    # it (0: off; twenty-second round: better on RAVDESS telephone speech, worse on FSDD)
    edge_knee: float = 0.0
    ltas_random_db: float = 7.0  # std (dB) of the random pseudo-speaker average envelope
    timbre_terms: int = 3  # cosines (log-frequency axis) of that envelope: its smoothness
    hp_cutoff_hz: tuple[float, float] = (150.0, 400.0)  # log-uniform high-pass corner; (0, 0): off
    # the same corner's range for a band-limited recording (telephone), the draw mapped onto it
    # at the same relative position; None: as full band (twentieth round)
    hp_cutoff_narrow_hz: tuple[float, float] | None = None
    hp_order: int = 2
    # candidate selection: draw this many parameter sets, keep the one whose long-term mel
    # spectrum moved farthest from the input's (1: no selection)
    candidates: int = 5
    lifter: int = 36  # cepstral terms kept for the envelope
    envelope_iterations: int = 0  # true-envelope passes on top of the cepstral envelope
    voicing_threshold: float = 0.45  # normalised autocorrelation peak for a voiced frame
    n_fft: int = N_FFT
    hop: int = HOP


_ANCHORS_HZ = (0.0, 400.0, 1000.0, 1800.0, 2800.0, 4200.0, 8000.0)  # per-band warp anchors
_LOG_EPS = 1e-10
_SEMITONE = np.log(2) / 12


def median_f0(x: np.ndarray, voicing_threshold: float = 0.45) -> float | None:
    """Median F0 (Hz) of the voiced, loud frames of `x` (16 kHz), or None when too few.

    Analysed at 8 kHz with 64 ms frames (long enough for 60 Hz voices): cheap.
    """
    y = x[: len(x) // 2 * 2].reshape(-1, 2).mean(axis=1)  # crude 2:1 decimation is enough here
    if len(y) < 512:
        return None
    power = np.abs(stft(y, 512, 256)) ** 2
    f0, strength = frame_f0(power, SAMPLE_RATE // 2)
    frame_db = 10 * np.log10(power.sum(axis=1) + 1e-20)
    voiced = (frame_db > frame_db.max() - 30.0) & (strength > voicing_threshold)
    return float(np.median(f0[voiced])) if voiced.sum() >= 3 else None


@functools.lru_cache(maxsize=4)
def _mel_matrix(n_bins: int, bin_hz: float, n_mels: int = 24) -> np.ndarray:
    """Triangular mel filterbank (n_mels, n_bins) from 0 to Nyquist (HTK mel scale); cached, read-only."""
    mel = 2595 * np.log10(1 + np.arange(n_bins) * bin_hz / 700)
    edges = np.linspace(0, mel[-1], n_mels + 2)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bank = np.maximum(0.0, np.minimum((mel - lo) / (mid - lo), (hi - mel) / (hi - mid)))
    bank.flags.writeable = False
    return bank


def _uniform_excluding(u: float, lo: float, hi: float, gap: float) -> float:
    """Map u in [0, 1) uniformly onto [lo, hi] minus the open band (-gap, gap)."""
    a, b = max(lo, -gap), min(hi, gap)
    excl = max(0.0, b - a)
    t = lo + u * (hi - lo - excl)
    return float(t + excl if excl > 0 and t >= a else t)


def _generic_shape(k: np.ndarray, bin_hz: float) -> np.ndarray:
    """Generic long-term envelope shape (natural log units, zero mean): flat, then -6 dB/oct."""
    hz = np.maximum(k * bin_hz, 100.0)
    db = -6.0 * np.log2(hz / 500.0) * (hz > 500.0)
    shape = db * np.log(10) / 20
    return shape - shape.mean()


_MIN_RUN_BINS = 8  # a band is carried only as a run of this many bins (500 Hz at 62.5 Hz a bin)
_FULL_BAND_HZ = 7500.0  # a recording carrying speech up to here is full band (a resampler's roll-off)
_MIN_EDGE_HZ = 3000.0  # no band edge is put below this


def _band_edge(env: np.ndarray, bin_hz: float, empty_db: float) -> float | None:
    """The top bin of the band a band-limited recording carries (a telephone call: about 4 kHz),
    from its speech frames' log envelopes (frames, bins); None for a full-band recording.

    The band is the last run of bins whose long-term power is within `empty_db` of the 0.3-3.4
    kHz level; a recording whose band reaches `_FULL_BAND_HZ` is full band, so full-band speech
    is treated exactly as before the rule. Power, not log, average: a band that only consonants
    fill is still carried; a run, not single bins: smoothing ripple near Nyquist does not reopen
    a band the channel cut off."""
    n = env.shape[1]
    if empty_db <= 0 or not len(env):
        return None
    level = np.log(np.exp(2 * (env - env.max())).mean(axis=0) + 1e-30) / 2  # log magnitude
    hz = np.arange(n) * bin_hz
    ref = float(level[(hz >= 300.0) & (hz <= 3400.0)].mean())
    loud = level > ref - empty_db * np.log(10) / 20
    run = np.convolve(loud, np.ones(_MIN_RUN_BINS, int), mode="valid") == _MIN_RUN_BINS
    if not run.any():
        return None
    top = int(np.flatnonzero(run)[-1]) + _MIN_RUN_BINS - 1  # last bin of the last run
    if hz[top] >= _FULL_BAND_HZ:
        return None
    return float(max(top, np.ceil(_MIN_EDGE_HZ / bin_hz)))


def _speech_and_edge(
    power: np.ndarray, env: np.ndarray, bin_hz: float, empty_db: float
) -> tuple[np.ndarray, float | None]:
    """The speech frames (within 35 dB of the loudest) of an STFT's power (frames, bins), and the
    top bin of the band they carry (`_band_edge` on their log envelopes `env`; None: full band)."""
    frame_db = 10 * np.log10(power.sum(axis=1) + 1e-20)
    speech = frame_db > frame_db.max() - 35.0
    edge = _band_edge(env[speech], bin_hz, empty_db) if speech.any() else None
    return speech, edge


def band_edge_hz(audio: Audio, config: AnonymiserConfig | None = None) -> float | None:
    """The top of the band a band-limited recording carries (a telephone call: about 4 kHz),
    in Hz, or None for full-band speech or no speech; the same rule the voice change uses.

    Frames do not overlap (a long-term average needs no more): under 1 ms per second of audio."""
    c = config or AnonymiserConfig()
    x = np.nan_to_num(np.asarray(audio, dtype=np.float64).ravel())
    if x.size < 2 * c.n_fft or np.max(np.abs(x)) < 1e-6:
        return None
    power = np.abs(stft(x, c.n_fft, c.n_fft)) ** 2
    env = cepstral_envelope(0.5 * np.log(power + _LOG_EPS**2), c.lifter, c.envelope_iterations)
    bin_hz = SAMPLE_RATE / c.n_fft
    _, edge = _speech_and_edge(power, env, bin_hz, c.band_empty_db)
    return None if edge is None else edge * bin_hz


def _keep_edge(src: np.ndarray, edge: float, knee: float) -> np.ndarray:
    """A warp `src` (source bin per output bin) that would push the top of a band-limited
    recording past its edge, compressed from `knee` x edge up so the edge maps onto itself."""
    k1 = int(knee * edge)
    top = int(np.floor(edge))
    if k1 >= top or src[top] >= edge:
        return src
    out = src.copy()
    k = np.arange(k1, top + 1)
    out[k1 : top + 1] = src[k1] + (k - k1) * (edge - src[k1]) / (top - k1)
    above = np.arange(top + 1, len(src))
    out[top + 1 :] = np.maximum(src[top + 1 :], above)  # past the edge: still outside the band
    return np.maximum.accumulate(out)


@dataclass(frozen=True)
class _Draw:
    """One snippet's random parameters (local to a call; never stored)."""

    pitch_ratio: float
    formant: float
    bands: np.ndarray  # per-anchor log warp, in units of nonlinear_warp
    timbre: np.ndarray  # weights of the random average-envelope cosines
    hp_hz: float  # high-pass corner (0: none)


class VoiceAnonymiser:
    """Change the voice of one snippet with parameters drawn from `rng` per call, never stored."""

    name = "earshot"

    def __init__(self, config: AnonymiserConfig | None = None) -> None:
        self.config = config or AnonymiserConfig()

    def _draw(self, rng: np.random.Generator, src_f0: float | None) -> _Draw:
        """Draw every random parameter, always the same number of values in the same order."""
        c = self.config
        u_pitch, u_size, u_dir, u_mix, u_mild, u_hp = rng.uniform(size=6)
        if src_f0 is not None:
            # log shift: inside the target range and the up/down limits, away from 0
            lo, hi = np.log(c.f0_target_hz[0]), np.log(c.f0_target_hz[1])
            s = np.log(src_f0)
            shift_lo = max(lo - s, -c.max_down_semitones * _SEMITONE)
            shift_hi = min(hi - s, c.max_up_semitones * _SEMITONE)
            if shift_hi < shift_lo:  # voice far outside the target range: nearest limit
                shift_lo = shift_hi = shift_lo if lo > s else shift_hi
            gap = c.min_shift_semitones * _SEMITONE
            if c.down_when_boxed and -gap < shift_lo < 0 and shift_hi < gap:
                shift = shift_lo  # no room for the minimum shift: down to the floor, not up
            else:
                shift = _uniform_excluding(u_pitch, shift_lo, shift_hi, gap)
            own = c.vtl_gamma * np.log(src_f0 / 160.0)
        else:  # no usable F0 (whisper, noise): a random moderate shift, a random direction
            shift = _uniform_excluding(u_pitch, -5 * _SEMITONE, 5 * _SEMITONE, 2 * _SEMITONE)
            own = 0.0
        # formants: toward and past the middle scale by a random amount
        m_lo, m_hi = np.log(c.formant_move[0]), np.log(c.formant_move[1])
        sign = -np.sign(own) if abs(own) > c.formant_middle else (1.0 if u_dir < 0.5 else -1.0)
        log_f = sign * (m_lo + u_size * (m_hi - m_lo))
        if u_mix < c.away_mix:  # now and then a mild move the other way instead
            a_lo, a_hi = np.log(c.away_mild[0]), np.log(c.away_mild[1])
            log_f = -sign * (a_lo + u_mild * (a_hi - a_lo))
        formant = float(np.exp(np.clip(log_f, np.log(c.formant_factor[0]), np.log(c.formant_factor[1]))))
        h_lo, h_hi = c.hp_cutoff_hz
        hp_hz = float(np.exp(np.log(h_lo) + u_hp * (np.log(h_hi) - np.log(h_lo)))) if h_hi > 0 else 0.0
        return _Draw(
            pitch_ratio=float(np.exp(shift)),
            formant=formant,
            bands=rng.standard_normal(len(_ANCHORS_HZ)),
            timbre=rng.standard_normal(c.timbre_terms),
            hp_hz=hp_hz,
        )

    def _narrowband_hp(self, d: _Draw) -> _Draw:
        """`d` with its high-pass corner moved to the same relative place in the narrowband range."""
        (lo, hi), narrow = self.config.hp_cutoff_hz, self.config.hp_cutoff_narrow_hz
        if narrow is None or d.hp_hz <= 0 or hi <= lo:
            return d
        u = (np.log(d.hp_hz) - np.log(lo)) / (np.log(hi) - np.log(lo))
        hp_hz = float(np.exp(np.log(narrow[0]) + u * np.log(narrow[1] / narrow[0])))
        return replace(d, hp_hz=hp_hz)

    def _new_envelope(
        self, env: np.ndarray, speech: np.ndarray, p: _Draw, bin_hz: float, edge: float | None = None
    ) -> np.ndarray:
        """Steps 2 and 3 on the per-frame log envelope: formant warp, timbre, high-pass.

        `edge`: the top bin of a band-limited recording (None: full band); the bins the warp
        fills from above it are never lifted."""
        c = self.config
        # 2. formants: global and per-band warp of the envelope, kept monotone
        k = np.arange(env.shape[1])
        log_w = c.nonlinear_warp * np.interp(k, np.asarray(_ANCHORS_HZ) / bin_hz, p.bands)
        src = np.maximum.accumulate(k / p.formant * np.exp(-log_w))
        if edge is not None and c.edge_knee > 0:
            src = _keep_edge(src, edge, c.edge_knee)
        new_env = warp_bins(env, src)

        # 3. timbre: generic long-term envelope + random smooth shape, random high-pass
        if c.ltas_removal > 0 and speech.any():
            mean_env = new_env[speech].mean(axis=0)
            target = _generic_shape(k, bin_hz)
            u = np.log(np.maximum(k * bin_hz, 100.0) / 100.0) / np.log(80.0)  # 0..1
            nt = c.timbre_terms
            basis = np.cos(np.pi * np.outer(np.arange(1, nt + 1), u)) / np.sqrt(nt / 2)
            rand = c.ltas_random_db * np.log(10) / 20 * (p.timbre @ basis)
            dev = mean_env - mean_env.mean() - target
            if edge is None:
                delta = c.ltas_removal * (dev - rand)
            else:  # a band-limited recording: level set on its band, the rest never lifted
                carried = src <= edge
                delta = c.ltas_removal * (dev - dev[carried].mean() - rand)
                delta[~carried] = np.maximum(delta[~carried], 0.0)
            new_env = new_env - delta[None, :]
        if p.hp_hz > 0:
            f = np.maximum(k * bin_hz, 1.0)
            new_env = new_env - 0.5 * np.log1p((p.hp_hz / f) ** (2 * c.hp_order))[None, :]
        return new_env

    def _select(
        self,
        draws: list[_Draw],
        power: np.ndarray,
        env: np.ndarray,
        speech: np.ndarray,
        bin_hz: float,
        edge: float | None = None,
    ) -> _Draw:
        """The candidate whose output's long-term log-mel spectrum is farthest from the input's.

        Measured on magnitudes only (no phase vocoder, no synthesis), so a candidate costs little.
        """
        if not speech.any():
            return draws[0]
        mel = _mel_matrix(env.shape[1], bin_hz)
        log_mag = 0.5 * np.log(power[speech] + _LOG_EPS**2)
        env_s = env[speech]  # speech frames only: the same long-term statistics, fewer frames
        all_s = np.ones(len(env_s), bool)
        log_exc = log_mag - env_s

        def ltas(lm: np.ndarray) -> np.ndarray:
            m = np.log(np.exp(2 * lm).mean(axis=0) @ mel.T + 1e-20)
            return m - m.mean()

        ref = ltas(log_mag)
        dist = []
        for p in draws:
            exc = scaled_log_excitation(log_exc, p.pitch_ratio, edge)
            out = exc + self._new_envelope(env_s, all_s, p, bin_hz, edge)
            dist.append(float(np.sqrt(np.mean((ltas(out) - ref) ** 2))))
        return draws[int(np.argmax(dist))]

    def anonymise(self, audio: Audio, rng: np.random.Generator) -> Audio:
        """Return an anonymised copy of `audio` (float32 mono, same sample rate and length).

        Empty, very short, silent or non-finite input comes back as a sanitised copy.
        """
        c = self.config
        x = np.nan_to_num(np.asarray(audio, dtype=np.float64).ravel())
        if x.size < 2 * c.n_fft or np.max(np.abs(x)) < 1e-6:
            for _ in range(c.candidates):  # consume the same draws either way
                self._draw(rng, None)
            return x.astype(np.float32)
        src_f0 = median_f0(x, c.voicing_threshold)
        draws = [self._draw(rng, src_f0) for _ in range(c.candidates)]
        bin_hz = SAMPLE_RATE / c.n_fft

        spec, power, env = self._analyse(x)
        speech, edge = _speech_and_edge(power, env, bin_hz, c.band_empty_db)
        if edge is not None and c.hp_cutoff_narrow_hz is not None:
            draws = [self._narrowband_hp(d) for d in draws]
        p = self._select(draws, power, env, speech, bin_hz, edge) if len(draws) > 1 else draws[0]
        return self._render(x, spec, env, speech, p, edge, p.pitch_ratio)

    def _analyse(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(STFT, power, per-frame cepstral log envelope) of `x`."""
        c = self.config
        spec = stft(x, c.n_fft, c.hop)
        power = spec.real**2 + spec.imag**2
        env = cepstral_envelope(0.5 * np.log(power + _LOG_EPS**2), c.lifter, c.envelope_iterations)
        return spec, power, env

    def _render(
        self,
        x: np.ndarray,
        spec: np.ndarray,
        env: np.ndarray,
        speech: np.ndarray,
        p: _Draw,
        edge: float | None,
        pitch_ratio: float,
    ) -> Audio:
        """Steps 1-3 of draw `p` on the analysis of `x` (`pitch_ratio`: the excitation's scale),
        synthesised at `x`'s loudness with peaks limited to 0.99."""
        c = self.config
        # 1. pitch: scale the excitation (phase-locked phase vocoder)
        new_log_exc, new_phase = scale_excitation(spec, env, np.full(len(spec), pitch_ratio), c.hop, edge)
        new_env = self._new_envelope(env, speech, p, SAMPLE_RATE / c.n_fft, edge)

        y = istft(np.exp(new_log_exc + new_env + 1j * new_phase), len(x), c.n_fft, c.hop)
        rms_in, rms_out = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(y**2))
        if rms_out > 0:
            y *= rms_in / rms_out
        peak = np.max(np.abs(y))
        if peak > 0.99:
            y *= 0.99 / peak
        return y.astype(np.float32)


__all__ = ["AnonymiserConfig", "McAdamsAnonymiser", "VoiceAnonymiser", "band_edge_hz", "median_f0"]
