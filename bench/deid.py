"""Throughput of the de-identification path, stage by stage, next to the ASR stage alone.

Run:  .venv/bin/python bench/deid.py [--minutes 4] [--recording-s 60] [--sweep] [--json OUT]

Builds a few minutes of real speech by concatenating utterances of ../shared/data/ravdess16k and
librispeech_1089 (read in place, never copied), cut into recordings of about --recording-s
seconds and encoded as FLAC in memory (so the decode stage does real work). For each recording
it runs (1) the ASR stage alone on the recording's snippets and (2) the whole path
(decode -> VAD -> ASR -> PII -> redact -> voice), interleaved so both see the same machine load.
Figures are "x real time" = seconds of input audio / seconds of processing (higher is better),
from wall-clock time and, because the machine may be shared, from process CPU time too.
Model loading (hash check, ASR, VAD, PII recognisers) is measured and reported separately and
also amortised into the "with load" figure. --sweep also compares ASR settings (WER vs the
data set's references and speed) on the same snippets.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from earshot.pipeline.types import SAMPLE_RATE  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
TARGET_X = 30.0
TARGET_RATIO = 1.5


def machine_info() -> dict[str, object]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu_model": model,
        "cpus_online": os.cpu_count(),
        "cpus_usable": usable,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }


def load_speech(minutes: float) -> tuple[np.ndarray, list[str]]:
    """Utterances in a fixed interleaved order (LibriSpeech first, then RAVDESS actors)."""
    items: list[tuple[Path, str]] = []
    for name in ("librispeech_1089", "ravdess16k"):
        folder = DATA / name
        with (folder / "MANIFEST.tsv").open() as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if name == "ravdess16k":  # spread over actors: one utterance of each actor, then the next
            rows.sort(key=lambda r: (r["path"].split("/")[-1], r["speaker"]))
        items += [(folder / r["path"], r["transcript"]) for r in rows]
    parts, refs, total = [], [], 0
    for path, ref in items:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
        if rate != SAMPLE_RATE:
            continue
        parts.append(audio.mean(axis=1))
        refs.append(ref)
        total += len(parts[-1])
        if total >= minutes * 60 * SAMPLE_RATE:
            break
    return np.concatenate(parts), refs


def to_flac(audio: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def snippet_audio(data: bytes, max_snippet_s: float) -> list[np.ndarray]:
    """The snippets' original audio, as the pipeline cuts them."""
    from earshot.pipeline.decode import decode_audio
    from earshot.pipeline.segment import segment

    audio = decode_audio(data)
    spans = segment(audio, max_snippet_s=max_snippet_s)
    return [audio[int(round(s.start_s * SAMPLE_RATE)) : int(round(s.end_s * SAMPLE_RATE))] for s in spans]


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", text.lower()).split()


def wer(ref: list[str], hyp: list[str]) -> float:
    """Word error rate by edit distance."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / max(1, len(ref))


def x_rt(audio_s: float, seconds: float) -> float:
    return audio_s / seconds if seconds > 0 else float("inf")


def second_opinion_cost(
    pipeline: object, recordings: list[bytes], max_snippet_s: float,
    audio_s: float, speech_s: float, whole_wall: float, alone_wall: float,
) -> dict[str, object]:
    """What the PII second opinion (Whisper base) cost here, and would cost on every snippet.

    It runs only where a PII cue meets unsure words, so its share depends on the speech; the
    worst case is measured by timing it on the first recording's snippets and scaling to the
    whole input's snippet audio.
    """
    from earshot.pipeline.deid import DeidPipeline

    assert isinstance(pipeline, DeidPipeline)
    asked = pipeline.timings.stages["second_opinion"]
    print(f"\nPII second opinion (Whisper base): asked {asked.calls} time(s) in this run, "
          f"{asked.wall_s:.2f} s wall")  # fmt: skip
    if pipeline.second_opinion is None:
        return {"enabled": False}
    t0, c0 = time.perf_counter(), time.process_time()
    model = pipeline.second_opinion.transcriber
    load_wall, load_cpu = time.perf_counter() - t0, time.process_time() - c0
    pieces = snippet_audio(recordings[0], max_snippet_s)
    model.transcribe_batch(pieces[:2])  # warm
    t0 = time.perf_counter()
    model.transcribe_batch(pieces)
    per_s = (time.perf_counter() - t0) / max(1e-9, sum(len(p) for p in pieces) / SAMPLE_RATE)
    worst = whole_wall + per_s * speech_s
    print(f"  its load (join check + hash + load, once per process, on first use): "
          f"{load_wall:.2f} s wall / {load_cpu:.2f} s CPU")  # fmt: skip
    print(f"  alone: {1 / per_s:.1f}x real time on the first recording's snippets; if every "
          f"snippet needed it: whole path {x_rt(audio_s, worst):.1f}x, "
          f"{worst / alone_wall:.2f}x the ASR stage alone")  # fmt: skip
    return {"enabled": True, "asked": asked.calls, "wall_s": asked.wall_s, "load_wall_s": load_wall,
            "load_cpu_s": load_cpu, "x_rt_alone": 1 / per_s,
            "worst_case_x_rt": x_rt(audio_s, worst), "worst_case_ratio": worst / alone_wall}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=4.0, help="minutes of speech (default 4)")
    ap.add_argument("--recording-s", type=float, default=60.0, help="length of each recording")
    ap.add_argument("--threads", type=int, default=None, help="ASR threads (default: settings)")
    ap.add_argument("--voice-workers", type=int, default=2, help="voice-change threads (default 2)")
    ap.add_argument("--sweep", action="store_true", help="also compare ASR settings")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()

    info = machine_info()
    print("machine:", ", ".join(f"{k}={v}" for k, v in info.items()))

    audio, refs = load_speech(args.minutes)
    audio_s = len(audio) / SAMPLE_RATE
    step = int(args.recording_s * SAMPLE_RATE)
    recordings = [to_flac(audio[i : i + step]) for i in range(0, len(audio), step)]
    print(f"input: {audio_s:.1f} s of real speech ({len(refs)} utterances) "
          f"as {len(recordings)} FLAC recordings")  # fmt: skip

    from earshot.config import Settings
    from earshot.pipeline.asr import AsrOptions, WhisperTranscriber
    from earshot.pipeline.deid import DeidPipeline, Timings

    settings = Settings()
    threads = args.threads or settings.asr_threads
    t0, c0 = time.perf_counter(), time.process_time()
    transcriber = WhisperTranscriber(cpu_threads=threads)
    asr_load_wall, asr_load_cpu = time.perf_counter() - t0, time.process_time() - c0
    pipeline = DeidPipeline(
        transcriber=transcriber, max_snippet_s=settings.max_snippet_s, voice_workers=args.voice_workers
    )
    load_wall, load_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"model load, once per process: all {load_wall:.2f} s wall / {load_cpu:.2f} s CPU, "
          f"of which ASR (hash check + load) {asr_load_wall:.2f} s / {asr_load_cpu:.2f} s")  # fmt: skip

    # Warm the code paths once on a little audio (not counted).
    pipeline.process(audio[: 5 * SAMPLE_RATE])
    pipeline.timings.reset()

    asr_alone = Timings()
    n_snippets = 0
    speech_s = 0.0
    hyps: list[str] = []
    for data in recordings:
        # (1) the ASR stage alone on the same snippets (decode and VAD outside the clock)
        pieces = snippet_audio(data, settings.max_snippet_s)
        with asr_alone.measure("asr"):
            transcripts = transcriber.transcribe_batch(pieces)
        hyps += [t.text for t in transcripts]
        # (2) the whole path on the recording's bytes
        snippets = pipeline.process_bytes(data)
        n_snippets += len(snippets)
        speech_s += sum(s.end_s - s.start_s for s in snippets)
    stages = pipeline.timings.stages

    whole_wall = sum(t.wall_s for t in stages.values())
    whole_cpu = sum(t.cpu_s for t in stages.values())
    alone = asr_alone.stages["asr"]
    print(f"snippets: {n_snippets}, {speech_s:.1f} s of snippet audio "
          f"({100 * speech_s / audio_s:.0f}% of the input)")  # fmt: skip
    print()
    print(f"{'stage':<24}{'wall s':>9}{'CPU s':>9}{'x RT wall':>11}{'x RT CPU':>10}{'share':>8}")
    rows = {}
    for name, t in stages.items():
        rows[name] = t
        print(f"{name:<24}{t.wall_s:>9.2f}{t.cpu_s:>9.2f}{x_rt(audio_s, t.wall_s):>11.1f}"
              f"{x_rt(audio_s, t.cpu_s):>10.1f}{100 * t.wall_s / whole_wall:>7.0f}%")  # fmt: skip
    print(f"{'WHOLE PATH':<24}{whole_wall:>9.2f}{whole_cpu:>9.2f}{x_rt(audio_s, whole_wall):>11.1f}"
          f"{x_rt(audio_s, whole_cpu):>10.1f}")  # fmt: skip
    lw, lc = whole_wall + load_wall, whole_cpu + load_cpu
    print(f"{'whole path + all loads':<24}{lw:>9.2f}{lc:>9.2f}"
          f"{x_rt(audio_s, lw):>11.1f}{x_rt(audio_s, lc):>10.1f}")  # fmt: skip
    print(f"{'ASR stage alone':<24}{alone.wall_s:>9.2f}{alone.cpu_s:>9.2f}"
          f"{x_rt(audio_s, alone.wall_s):>11.1f}{x_rt(audio_s, alone.cpu_s):>10.1f}")  # fmt: skip
    aw, ac = alone.wall_s + asr_load_wall, alone.cpu_s + asr_load_cpu
    print(f"{'ASR alone + its load':<24}{aw:>9.2f}{ac:>9.2f}"
          f"{x_rt(audio_s, aw):>11.1f}{x_rt(audio_s, ac):>10.1f}")  # fmt: skip
    ratio_wall, ratio_cpu = whole_wall / alone.wall_s, whole_cpu / alone.cpu_s
    print()
    print(f"whole path / ASR alone: {ratio_wall:.2f}x wall, {ratio_cpu:.2f}x CPU; "
          f"with loads: {lw / aw:.2f}x wall, {lc / ac:.2f}x CPU   (target <= {TARGET_RATIO}x)")  # fmt: skip
    print(f"whole path: {x_rt(audio_s, whole_wall):.1f}x real time wall, "
          f"{x_rt(audio_s, whole_cpu):.1f}x per CPU-s  (target >= {TARGET_X:.0f}x on 2 cores)")  # fmt: skip
    ref_words = [w for r in refs for w in words(r)]
    hyp_words = [w for h in hyps for w in words(h)]
    asr_wer = wer(ref_words, hyp_words)
    print(f"ASR WER on this input (original audio, {len(ref_words)} reference words): {asr_wer:.3f}")
    print(f"load average now: {os.getloadavg()[0]:.2f} (a shared machine slows wall-clock figures)")

    result: dict[str, object] = {
        "machine": info,
        "audio_s": audio_s,
        "recordings": len(recordings),
        "snippets": n_snippets,
        "model_load": {"wall_s": load_wall, "cpu_s": load_cpu,
                       "asr_wall_s": asr_load_wall, "asr_cpu_s": asr_load_cpu},
        "stages": {k: vars(v) for k, v in rows.items()},
        "whole_path": {"wall_s": whole_wall, "cpu_s": whole_cpu,
                       "x_rt_wall": x_rt(audio_s, whole_wall), "x_rt_cpu": x_rt(audio_s, whole_cpu)},
        "asr_alone": {"wall_s": alone.wall_s, "cpu_s": alone.cpu_s,
                      "x_rt_wall": x_rt(audio_s, alone.wall_s), "x_rt_cpu": x_rt(audio_s, alone.cpu_s)},
        "ratio_whole_to_asr": {"wall": ratio_wall, "cpu": ratio_cpu,
                               "wall_with_loads": lw / aw, "cpu_with_loads": lc / ac},
        "asr_wer": asr_wer,
        "load_avg_1m_end": os.getloadavg()[0],
    }  # fmt: skip

    result["second_opinion"] = second_opinion_cost(pipeline, recordings, settings.max_snippet_s,
                                                   audio_s, speech_s, whole_wall, alone.wall_s)

    if args.sweep:
        print("\nASR settings on the same snippets (x real time over the input, WER):")
        all_pieces = [p for data in recordings for p in snippet_audio(data, settings.max_snippet_s)]
        variants = {
            "default (snippet context, batch 8, 2 replicas)": AsrOptions(),
            "1 replica (all threads in it)": AsrOptions(workers=1),
            "batch 1": AsrOptions(batch_size=1),
            "30 s context (as trained)": AsrOptions(context="full"),
            "min context 8 s": AsrOptions(min_context_s=8.0),
            "beam 5": AsrOptions(beam_size=5),
            "int8_float32": AsrOptions(compute_type="int8_float32"),
        }
        sweep = {}
        for label, opts in variants.items():
            for th in sorted({1, threads}):
                tr = WhisperTranscriber(cpu_threads=th, options=opts)
                tr.transcribe_batch(all_pieces[:2])
                w0, c0 = time.perf_counter(), time.process_time()
                out = tr.transcribe_batch(all_pieces)
                w, c = time.perf_counter() - w0, time.process_time() - c0
                e = wer(ref_words, [x for t in out for x in words(t.text)])
                key = f"{label}, {th} thread(s)"
                sweep[key] = {"x_rt_wall": x_rt(audio_s, w), "x_rt_cpu": x_rt(audio_s, c), "wer": e}
                print(f"  {key:<48} {x_rt(audio_s, w):6.1f}x wall {x_rt(audio_s, c):6.1f}x CPU  "
                      f"WER {e:.3f}")  # fmt: skip
        result["asr_sweep"] = sweep

    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
