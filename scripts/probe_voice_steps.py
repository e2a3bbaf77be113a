"""WER of one anonymiser step at a time, at fixed parameters, on the *tuning* speakers only.

Not part of the product: a development harness for docs/deid-evaluation.md (ninth,
twenty-second and twenty-seventh rounds). It never touches actors 13-24. Every second utterance
of actors 01-12 (72; `--all`: all 144), faster-whisper tiny.en.

    .venv/bin/python scripts/probe_voice_steps.py 0.7 0.7:1.2 0.7:1:1 0.7:1:0:300
    .venv/bin/python scripts/probe_voice_steps.py --narrowband 1 0.7   # telephone-band input
    .venv/bin/python scripts/probe_voice_steps.py --narrowband --all --by-gender 0.7 psola0.7
    .venv/bin/python scripts/probe_voice_steps.py --narrowband --lowpass 2600 1 0.7
    .venv/bin/python scripts/probe_voice_steps.py --narrowband --all --by-gender 0.7@512@64

Each argument is `pitch_ratio[:formant[:timbre[:high_pass_hz[:random_db[:w1:w2:w3]]]]]`: the
pitch ratio and the formant factor are fixed (no per-band warp, one candidate); `timbre` 1
replaces the average envelope by the generic tilt plus a random shape of `random_db` (default
7 dB, drawn per utterance), 0 leaves the speaker's own; `high_pass_hz` 0 is off; `w1:w2:w3`
pin the shape's cosine weights instead of drawing them (eleventh round; one weight of 1.7
gives about the RMS of a typical draw); a suffix `@N_FFT@HOP` sets another STFT window and
hop (twenty-seventh round). `psolaR` is the pitch scaled by R with Praat's PSOLA
instead (`tune_voice.praat_psola`; parselmouth needed). Prints the WER of the original, then of
each setting; `--by-gender` splits it by the actors' gender, `--lowpass HZ` adds the WER of the
original and of the output both low-passed at HZ (where in the band the cost lies).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from earshot.evaluation.asr import WhisperJudge
from earshot.evaluation.manifest import load_audio, read_manifest, telephone_band
from earshot.evaluation.metrics import word_error_rate
from earshot.pipeline.voice import _ANCHORS_HZ, AnonymiserConfig, VoiceAnonymiser, _Draw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune_voice import DATA, TUNING, male_actors, praat_psola  # noqa: E402


class PinnedAnonymiser(VoiceAnonymiser):
    """The product's anonymiser with its draw pinned to fixed parameters (shape random unless pinned)."""

    def __init__(
        self,
        ratio: float,
        formant: float = 1.0,
        timbre: float = 0.0,
        hp_hz: float = 0.0,
        random_db: float = AnonymiserConfig.ltas_random_db,
        *shape: float,
    ) -> None:
        super().__init__(
            AnonymiserConfig(
                ltas_removal=timbre,
                hp_cutoff_hz=(hp_hz, hp_hz),
                candidates=1,
                nonlinear_warp=0.0,
                ltas_random_db=random_db,
            )
        )
        self._pinned = (ratio, formant, hp_hz)
        if shape and len(shape) != self.config.timbre_terms:
            raise SystemExit(f"pin all {self.config.timbre_terms} shape weights or none, not {len(shape)}")
        self._shape = np.asarray(shape, dtype=np.float64) if shape else None

    def _draw(self, rng: np.random.Generator, src_f0: float | None) -> _Draw:
        ratio, formant, hp_hz = self._pinned
        timbre = rng.standard_normal(self.config.timbre_terms)  # drawn either way: same sequence
        if self._shape is not None:
            timbre = self._shape
        return _Draw(ratio, formant, np.zeros(len(_ANCHORS_HZ)), timbre, hp_hz)


def lowpass(x: np.ndarray, hz: float) -> np.ndarray:
    """`x` through an 8th-order zero-phase Butterworth low-pass at `hz`."""
    from scipy.signal import butter, sosfiltfilt

    return sosfiltfilt(butter(8, hz, fs=16000, output="sos"), x).astype(np.float32)


def main() -> None:
    args = sys.argv[1:]
    flags = {a for a in args if a in ("--narrowband", "--all", "--by-gender")}
    cut = float(args[args.index("--lowpass") + 1]) if "--lowpass" in args else 0.0
    if cut:
        del args[args.index("--lowpass") : args.index("--lowpass") + 2]
    specs = [a for a in args if a not in flags]
    rows = [r for r in read_manifest(DATA) if r.speaker in TUNING]
    rows = rows if "--all" in flags else rows[::2]
    audio = [load_audio(r.path) for r in rows]
    if "--narrowband" in flags:  # telephone input: through 8 kHz and back first
        audio = [telephone_band(a) for a in audio]
    refs = [r.transcript for r in rows]
    male = male_actors(r.speaker for r in rows)
    judge = WhisperJudge(cpu_threads=2)

    def wer(xs: Sequence[np.ndarray]) -> str:
        hyps = [judge.transcribe(a) for a in xs]

        def on(mask: np.ndarray) -> float:
            pick = np.flatnonzero(mask)
            return 100 * word_error_rate([refs[i] for i in pick], [hyps[i] for i in pick])

        if "--by-gender" not in flags:
            return f"{on(np.ones(len(refs), bool)):.2f} %"
        return f"{on(np.ones(len(refs), bool)):.2f} %  (female {on(~male):.2f} %, male {on(male):.2f} %)"

    print(f"{'original':20s} {wer(audio)}", flush=True)
    if cut:
        low = [lowpass(a, cut) for a in audio]
        print(f"{'original':20s} low-passed at {cut:.0f} Hz: {wer(low)}", flush=True)
    for spec in specs:
        if spec.startswith("psola"):
            out = [praat_psola(a, float(spec[5:])) for a in audio]
        else:
            pins, *window = spec.split("@")
            anon = PinnedAnonymiser(*(float(v) for v in pins.split(":")))
            if window:  # `...@N_FFT@HOP`: another STFT window and hop
                anon.config = replace(anon.config, n_fft=int(window[0]), hop=int(window[1]))
            out = [anon.anonymise(a, np.random.default_rng(i)) for i, a in enumerate(audio)]
        print(f"{spec:20s} {wer(out)}", flush=True)
        if cut:
            print(f"{spec:20s} low-passed at {cut:.0f} Hz: {wer([lowpass(a, cut) for a in out])}", flush=True)


if __name__ == "__main__":
    main()
