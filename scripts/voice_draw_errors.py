"""Where the ASR's errors on anonymised speech sit: word position, speaker, drawn parameters.

Not part of the product: a development harness for docs/deid-evaluation.md (twenty-seventh
round). Tuning speakers only (RAVDESS actors 01-12, all 144 utterances per seed), the current
default, faster-whisper tiny.en greedy. For every utterance and seed it keeps the draw the
selection chose and the ASR's errors by reference-word position, then prints the errors by
position (original and anonymised), the WER per speaker, and the WER in slices of each drawn
parameter (pitch shift, output F0, formant factor, high-pass corner, random shape weights).

    .venv/bin/python scripts/voice_draw_errors.py --narrowband --seeds 0 1 2 3
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import jiwer
import numpy as np

from earshot.evaluation.asr import WhisperJudge
from earshot.evaluation.manifest import load_audio, read_manifest, telephone_band
from earshot.evaluation.metrics import normalise_text
from earshot.evaluation.runner import _rng
from earshot.pipeline.voice import VoiceAnonymiser, _Draw, median_f0

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune_voice import DATA, TUNING, male_actors  # noqa: E402

WORDS = 6  # both RAVDESS sentences: "kids are talking by the door", "dogs are sitting by the door"


class RecordingAnonymiser(VoiceAnonymiser):
    """The default anonymiser, keeping the draw its selection chose for the last call."""

    last: _Draw | None = None

    def _select(self, draws: list[_Draw], *args: object, **kwargs: object) -> _Draw:
        self.last = super()._select(draws, *args, **kwargs)  # type: ignore[arg-type]
        return self.last


def errors_by_position(ref: str, hyp: str) -> Counter[int]:
    """Errors (substitutions, deletions; an insertion counts at the word it precedes)."""
    out: Counter[int] = Counter()
    for chunk in jiwer.process_words(normalise_text(ref), normalise_text(hyp)).alignments[0]:
        if chunk.type != "equal":
            for k in range(chunk.ref_start_idx, max(chunk.ref_end_idx, chunk.ref_start_idx + 1)):
                out[min(k, WORDS - 1)] += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--narrowband", action="store_true", help="telephone input: through 8 kHz and back")
    args = ap.parse_args()
    rows = [r for r in read_manifest(DATA) if r.speaker in TUNING]
    audio = [load_audio(r.path) for r in rows]
    if args.narrowband:
        audio = [telephone_band(a) for a in audio]
    judge = WhisperJudge(cpu_threads=2)
    anon = RecordingAnonymiser()
    orig = [errors_by_position(r.transcript, judge.transcribe(a)) for r, a in zip(rows, audio, strict=True)]
    recs = []
    for seed in args.seeds:
        for i, (r, a) in enumerate(zip(rows, audio, strict=True)):
            y = anon.anonymise(a, _rng(seed, "tune", i))
            assert anon.last is not None
            f0 = median_f0(np.asarray(a, np.float64)) or float("nan")
            errs = errors_by_position(r.transcript, judge.transcribe(y))
            recs.append((i, anon.last, f0, errs))
        print(f"seed {seed} done", flush=True)

    def pos(cs: list[Counter[int]]) -> str:
        total = sum(cs, Counter())
        return " ".join(f"{total[k]:3d}" for k in range(WORDS)) + f"  (total {sum(total.values())})"

    print("errors by word position 1-6:")
    print(f"  original   {pos(orig)}")
    print(f"  anonymised {pos([e for *_, e in recs])}  over {len(args.seeds)} seed(s)")
    n_err = np.array([sum(e.values()) for *_, e in recs])

    def wer(mask: np.ndarray) -> str:
        return f"n={int(mask.sum()):3d} WER {100 * n_err[mask].sum() / (WORDS * max(mask.sum(), 1)):5.1f} %"

    spk = np.array([rows[i].speaker for i, *_ in recs])
    print("per speaker (original -> anonymised):")
    for s in TUNING:
        o = sum(sum(orig[i].values()) for i, r in enumerate(rows) if r.speaker == s)
        n_s = sum(r.speaker == s for r in rows)
        print(f"  {s} {100 * o / (WORDS * n_s):5.1f} % -> {wer(spk == s)}")
    male = male_actors(spk)
    print(f"  female {wer(~male)}   male {wer(male)}")
    draws = [d for _, d, _, _ in recs]
    shift = np.array([12 * np.log2(d.pitch_ratio) for d in draws])
    params = {
        "pitch shift (semitones)": (shift, [-9, -6, -3, 0]),
        "output F0 (Hz)": (np.array([f0 for _, _, f0, _ in recs]) * 2 ** (shift / 12), [85, 100, 115, 130]),
        "formant factor": (np.array([d.formant for d in draws]), [0.9, 1.0, 1.1, 1.2]),
        "high-pass corner (Hz)": (np.array([d.hp_hz for d in draws]), [200, 250, 300, 350]),
    }
    for k in range(len(draws[0].timbre)):
        params[f"random shape weight {k + 1}"] = (np.array([d.timbre[k] for d in draws]), [-1, -0.3, 0.3, 1])
    for name, (v, edges) in params.items():
        bins = np.digitize(v, edges)
        print(f"{name}, by gender (female | male):")
        for b in range(len(edges) + 1):
            lo = "" if b == 0 else f">={edges[b - 1]}"
            hi = "" if b == len(edges) else f"<{edges[b]}"
            print(f"  {lo:>6s} {hi:<6s} {wer((bins == b) & ~male)} | {wer((bins == b) & male)}")


if __name__ == "__main__":
    main()
