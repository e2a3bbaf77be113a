"""Throughput of the de-identification path on short recordings, one process against a pool.

Run:  .venv/bin/python bench/deid_workers.py [--recordings 96] [--join 1] [--layouts 1x2 2x2 2x1]

Short recordings (a voice-assistant query, one snippet each) are the common case for grading
and the slowest per second of audio: each is one ASR batch, so inside one process at most one
core's worth of the pipeline's stages run at once. This bench takes --recordings RAVDESS
utterances (real speech, 3-5 s, read in place and encoded as FLAC in memory), each its own
recording, and pushes them through the whole path (decode -> VAD -> ASR -> PII -> redact ->
voice) under several layouts, in the same run so they see the same machine:

    PxT: P worker processes, each with its own pipeline and T ASR threads, fed from one queue
         (as `earshot worker --concurrency P` runs them: prefork, models loaded in each child).

Figures: seconds of input audio per wall second over all recordings ("x real time", higher is
better), model loads excluded (measured apart, Whisper base for the PII second opinion
included) and the pool warmed first. --pii SEED uses the planted-PII sentences of the PII
evaluation instead (espeak-ng), the worst case for the second opinion. --telephone passes every
recording through an 8 kHz channel first, as a call reaches intake: the second opinion then
hears every snippet tiny.en was not sure of (`SecondOpinionOptions.narrowband_sure_prob`;
docs/deid-pipeline.md, "Telephone-band speech").
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from deid import machine_info, to_flac  # noqa: E402

from earshot.pipeline.types import SAMPLE_RATE  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "ravdess16k"
TARGET_X = 30.0

_pipeline = None


def _channel(audio: np.ndarray, telephone: bool) -> np.ndarray:
    """`audio` as recorded, or through the 8 kHz channel of `earshot eval --telephone`."""
    if not telephone:
        return audio
    from earshot.evaluation.manifest import telephone_band

    return telephone_band(audio)


def load_recordings(n: int, join: int = 1, telephone: bool = False) -> tuple[list[bytes], float]:
    """`n` RAVDESS utterances spread over the actors, `join` of them per recording (with a
    0.5 s pause between), as FLAC bytes; and their total seconds."""
    with (DATA / "MANIFEST.tsv").open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    rows.sort(key=lambda r: (r["path"].split("/")[-1], r["speaker"]))  # one of each actor, then the next
    parts = []
    for row in rows[:n]:
        audio, rate = sf.read(DATA / row["path"], dtype="float32", always_2d=True)
        assert rate == SAMPLE_RATE
        parts.append(audio.mean(axis=1))
    pause = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    out, total = [], 0.0
    for i in range(0, len(parts), join):
        mono = np.concatenate([x for p in parts[i : i + join] for x in (p, pause)][:-1])
        out.append(to_flac(_channel(mono, telephone)))
        total += len(mono) / SAMPLE_RATE
    return out, total


def load_pii_recordings(seed: int, telephone: bool = False) -> tuple[list[bytes], float]:
    """The planted-PII sentences of `earshot eval --pii --seed SEED` (espeak-ng, three voices),
    each its own recording: speech dense in PII cues, where the second opinion is asked most."""
    import random

    from earshot.evaluation.pii_eval import DEFAULT_VOICES, build_sentences, synthesize_planted

    out, total = [], 0.0
    for i, item in enumerate(build_sentences(random.Random(seed))):
        audio, _ = synthesize_planted(item, DEFAULT_VOICES[i % len(DEFAULT_VOICES)])
        out.append(to_flac(_channel(audio, telephone)))
        total += len(audio) / SAMPLE_RATE
    return out, total


def _init(threads: int, voice_workers: int, ready: mp.Value) -> None:  # type: ignore[type-arg]
    """Load this worker's pipeline once and warm it, as a worker process does on its first task."""
    global _pipeline
    from earshot.config import Settings
    from earshot.pipeline.deid import DeidPipeline

    # as a worker builds it (intake.tasks.pipeline_for): every model loaded up front
    settings = Settings(asr_threads=threads)
    _pipeline = DeidPipeline(settings=settings, voice_workers=voice_workers, preload=True)
    rng = np.random.default_rng(0)
    _pipeline.process((0.1 * rng.standard_normal(3 * SAMPLE_RATE)).astype(np.float32))
    if _pipeline.second_opinion is not None:
        _pipeline.second_opinion.transcriber.transcribe(np.zeros(SAMPLE_RATE, np.float32))
    with ready.get_lock():
        ready.value += 1


def _work(data: bytes) -> tuple[int, int, dict[str, float]]:
    """Snippets made, second-opinion asks, and each stage's wall seconds for one recording."""
    assert _pipeline is not None
    _pipeline.timings.reset()
    n = len(_pipeline.process_bytes(data))
    stages = _pipeline.timings.stages
    return n, stages["second_opinion"].calls, {k: v.wall_s for k, v in stages.items()}


def run_layout(recordings: list[bytes], processes: int, threads: int, voice_workers: int) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    ready = ctx.Value("i", 0)
    t0 = time.perf_counter()
    with ctx.Pool(processes, initializer=_init, initargs=(threads, voice_workers, ready)) as pool:
        while ready.value < processes:
            time.sleep(0.05)
        load_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        done = list(pool.imap_unordered(_work, recordings, chunksize=1))
        wall = time.perf_counter() - t1
    busy = {k: sum(d[2].get(k, 0.0) for d in done) for k in done[0][2]} if done else {}
    return {"wall_s": wall, "load_and_warm_s": load_s, "snippets": sum(d[0] for d in done),
            "asked": sum(d[1] for d in done), "stage_busy_s": busy}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--recordings", type=int, default=96, help="short recordings (default 96)")
    ap.add_argument("--join", type=int, default=1, help="utterances per recording (default 1)")
    ap.add_argument("--pii", type=int, default=None, metavar="SEED",
                    help="instead: the planted-PII sentences of `earshot eval --pii --seed N`")  # fmt: skip
    ap.add_argument("--telephone", action="store_true", help="every recording through an 8 kHz channel first")
    ap.add_argument("--layouts", nargs="+", default=["1x2", "2x2", "2x1"],
                    help="PxT: P processes of T ASR threads (default 1x2 2x2 2x1)")  # fmt: skip
    ap.add_argument("--repeat", type=int, default=1, help="rounds over the layouts (alternating)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()

    info = machine_info()
    print("machine:", ", ".join(f"{k}={v}" for k, v in info.items()))
    if args.pii is not None:
        recordings, audio_s = load_pii_recordings(args.pii, args.telephone)
    else:
        recordings, audio_s = load_recordings(args.recordings, args.join, args.telephone)
    kind = "planted-PII sentences (espeak-ng)" if args.pii is not None else "real speech"
    kind += ", 8 kHz telephone channel" if args.telephone else ""
    print(f"input: {len(recordings)} recordings, {audio_s:.1f} s of {kind} "
          f"({audio_s / len(recordings):.1f} s each)")  # fmt: skip
    results: dict[str, list[dict[str, Any]]] = {}
    for _ in range(args.repeat):
        for layout in args.layouts:
            p, t = (int(x) for x in layout.split("x"))
            # a process's voice-change threads follow its share of the cores
            r = run_layout(recordings, p, t, voice_workers=max(1, t))
            r["x_rt"] = audio_s / r["wall_s"]
            results.setdefault(layout, []).append(r)
            print(f"  {p} process(es) x {t} ASR thread(s): {r['wall_s']:6.1f} s wall, "
                  f"{r['x_rt']:5.1f}x real time  (load + warm {r['load_and_warm_s']:.1f} s, "
                  f"{int(r['snippets'])} snippets, {int(r['asked'])} asked)", flush=True)  # fmt: skip
            busy = r["stage_busy_s"]
            print("      stage seconds summed over processes: "
                  + ", ".join(f"{k} {v:.1f}" for k, v in busy.items() if v >= 0.05), flush=True)  # fmt: skip
    print(f"target: >= {TARGET_X:.0f}x real time on this 2-core machine")
    print(f"load average now: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "audio_s": audio_s, "layouts": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
