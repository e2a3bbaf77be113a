"""How far Whisper's word timings are from where real spoken digits are, and what each way of
placing the redaction edges leaves audible.

Not part of the product: the measurement behind "Redaction edges at pauses" in
docs/deid-pipeline.md. Each string is an espeak carrier ("My number is") followed by eight
digits said by one FSDD speaker, each take trimmed to its speech (-35 dB of its loudest 10 ms,
plus 20 ms), joined with no gap (`--gaps`: 40-120 ms between digits, as `real_digits` does).
The product ASR (tiny.en) transcribes it; where it writes all eight digits, each digit word's
timing is compared with the true extent of the digits it covers. The string is then redacted as
the pipeline's redaction step does it on that transcript (`detect_pii` spans, reaching the
snippet's edges, plus untranscribed stretches), with the fixed 0.15 s margin and with edges placed
at pauses (`redaction_intervals(..., guide=audio)`). Printed: the timing errors, the share of
each number's first and last digit left audible (`pii_eval.silenced_share`, as the evaluation
measures it), and the share of the carrier silenced.

    .venv/bin/python scripts/word_timing.py --strings 150 [--telephone] [--gaps]
"""

from __future__ import annotations

import argparse
import platform
import random
from pathlib import Path

import numpy as np

from earshot.evaluation import pii_eval
from earshot.evaluation.manifest import load_utterance, read_manifest, telephone_band
from earshot.pipeline.asr import get_transcriber
from earshot.pipeline.pii import detect_pii
from earshot.pipeline.redact import (
    redaction_intervals,
    replace_intervals,
    to_snippet_edges,
    untranscribed_spans,
)
from earshot.pipeline.types import SAMPLE_RATE, Audio

FSDD = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fsdd" / "MANIFEST.tsv"


def _trim(x: Audio, keep_s: float = 0.02) -> tuple[Audio, float, float]:
    """`x` cut to its speech plus `keep_s`; (audio, where the speech starts, how long it is)."""
    f = 160
    n = len(x) // f
    db = 10 * np.log10(np.mean(x[: n * f].reshape(n, f) ** 2, axis=1) + 1e-12)
    on = np.flatnonzero(db > db.max() - 35)
    a, b = on[0] * f, (on[-1] + 1) * f
    k = int(keep_s * SAMPLE_RATE)
    lo = max(0, a - k)
    return x[lo : b + k], (a - lo) / SAMPLE_RATE, (b - a) / SAMPLE_RATE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strings", type=int, default=150)
    ap.add_argument("--telephone", action="store_true", help="through the 8 kHz channel")
    ap.add_argument("--gaps", action="store_true", help="40-120 ms between digits")
    ap.add_argument("--manifest", type=Path, default=FSDD)
    opts = ap.parse_args()
    by_speaker: dict[str, list] = {}
    for row in read_manifest(opts.manifest):
        by_speaker.setdefault(row.speaker, []).append(row)
    rng = random.Random(1)
    asr = get_transcriber()
    carrier = pii_eval._trim(pii_eval.synthesize("My number is", pii_eval.DEFAULT_VOICES[0]))
    start_err, end_err, first_err = [], [], []
    left: dict[str, list[float]] = {"fixed": [], "pauses": []}
    ok = 0
    for _ in range(opts.strings):
        takes = rng.sample(by_speaker[rng.choice(sorted(by_speaker))], 8)
        pieces, truth, pos = [carrier], [], len(carrier) / SAMPLE_RATE
        for i, take in enumerate(takes):
            if opts.gaps and i:
                gap = np.zeros(int(rng.uniform(0.04, 0.12) * SAMPLE_RATE), np.float32)
                pieces.append(gap)
                pos += len(gap) / SAMPLE_RATE
            x, lead, dur = _trim(load_utterance(take))
            truth.append((pos + lead, pos + lead + dur))
            pieces.append(x)
            pos += len(x) / SAMPLE_RATE
        audio = np.concatenate(pieces).astype(np.float32)
        if opts.telephone:
            audio = telephone_band(audio)
        transcript = asr.transcribe(audio)
        words = [(w, n) for w in transcript.words if (n := len(pii_eval.text_digits(w.text)))]
        if sum(n for _, n in words) != 8:
            continue
        ok += 1
        i = 0
        for j, (w, n) in enumerate(words):
            start_err.append(w.start_s - truth[i][0])
            end_err.append(w.end_s - truth[i + n - 1][1])
            if j == 0:
                first_err.append(w.start_s - truth[0][0])
            i += n
        duration = len(audio) / SAMPLE_RATE
        spans = [
            *to_snippet_edges(detect_pii(transcript), len(transcript.words), duration),
            *untranscribed_spans(transcript.words, duration, audio=audio),
        ]
        for name, guide in (("fixed", None), ("pauses", audio)):
            heard = [(0.0, replace_intervals(audio, redaction_intervals(spans, len(audio), guide=guide)))]
            carrier_s = (0.0, len(carrier) / SAMPLE_RATE)
            left[name] += [1 - pii_eval.silenced_share(audio, truth[0], heard),
                           1 - pii_eval.silenced_share(audio, truth[-1], heard),
                           pii_eval.silenced_share(audio, carrier_s, heard)]  # fmt: skip
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else ""
    print(f"{cpu}; strings with all 8 digits written: {ok}/{opts.strings}"
          f" (telephone={opts.telephone}, gaps={opts.gaps})")
    for name, x in (("word start - true start (> 0: late)", start_err),
                    ("first digit's start - true start", first_err),
                    ("word end - true end (> 0: late)", end_err)):  # fmt: skip
        v = np.array(x)
        print(f"{name}: n={len(v)} median {np.median(v):+.3f} s, 10-90 % {np.percentile(v, 10):+.3f} .. "
              f"{np.percentile(v, 90):+.3f} s, later than 0.15 s: {np.mean(v > 0.15):.2f}")
    for name, v in left.items():
        m = np.array(v).reshape(-1, 3)
        print(f"edges {name}: first digit audible {m[:, 0].mean():.3f} "
              f"(over 10 %: {np.mean(m[:, 0] > 0.1):.2f}), last digit audible {m[:, 1].mean():.3f}, "
              f"carrier silenced {m[:, 2].mean():.3f}")


if __name__ == "__main__":
    main()
