"""WER of one anonymiser step at a time, at fixed parameters, on the *tuning* speakers only.

Not part of the product: a development harness for docs/deid-evaluation.md (ninth round). It
never touches actors 13-24. Every second utterance of actors 01-12 (72), faster-whisper tiny.en.

    .venv/bin/python scripts/probe_voice_steps.py 0.7 0.7:1.2 0.7:1:1 0.7:1:0:300
    .venv/bin/python scripts/probe_voice_steps.py --narrowband 1 0.7   # telephone-band input

Each argument is `pitch_ratio[:formant[:timbre[:high_pass_hz[:random_db[:w1:w2:w3]]]]]`: the
pitch ratio and the formant factor are fixed (no per-band warp, one candidate); `timbre` 1
replaces the average envelope by the generic tilt plus a random shape of `random_db` (default
7 dB, drawn per utterance), 0 leaves the speaker's own; `high_pass_hz` 0 is off; `w1:w2:w3`
pin the shape's cosine weights instead of drawing them (eleventh round; one weight of 1.7
gives about the RMS of a typical draw). Prints the WER of the original, then of each setting.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from earshot.evaluation.asr import WhisperJudge
from earshot.evaluation.manifest import load_audio, read_manifest, telephone_band
from earshot.evaluation.metrics import word_error_rate
from earshot.pipeline.voice import _ANCHORS_HZ, AnonymiserConfig, VoiceAnonymiser, _Draw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune_voice import DATA, TUNING  # noqa: E402


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


def main() -> None:
    args = sys.argv[1:]
    narrowband = "--narrowband" in args  # telephone input: through 8 kHz and back first
    args = [a for a in args if a != "--narrowband"]
    rows = [r for r in read_manifest(DATA) if r.speaker in TUNING][::2]
    audio = [load_audio(r.path) for r in rows]
    if narrowband:
        audio = [telephone_band(a) for a in audio]
    refs = [r.transcript for r in rows]
    judge = WhisperJudge(cpu_threads=2)
    print(f"original {100 * word_error_rate(refs, [judge.transcribe(a) for a in audio]):.2f} %")
    for spec in args:
        anon = PinnedAnonymiser(*(float(v) for v in spec.split(":")))
        hyps = [judge.transcribe(anon.anonymise(a, np.random.default_rng(i))) for i, a in enumerate(audio)]
        print(f"{spec:20s} {100 * word_error_rate(refs, hyps):.2f} %", flush=True)


if __name__ == "__main__":
    main()
