"""Measure the watermark: detection rate after attacks, false matches, audibility and speed.

    python -m earshot.review.watermark_eval [--audio DIR] [--candidates 2000] [--trims 3] [--out FILE]

Speech comes from the audio files in DIR (any format `decode_audio` accepts) or, without DIR, from
espeak-ng sentences in several voices. Every marked snippet goes through each attack — MP3 at
64 kbit/s (16 kHz and 44.1 kHz), volume x0.3 and x2, a 5 s piece at a random offset — and is
checked against `candidates` payloads (its own among them). The same pieces unmarked, and marked
for a delivery that is not among the candidates, must name nothing. Prints a JSON report.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from earshot.pipeline.types import SAMPLE_RATE
from earshot.review import watermark as wm

SENTENCES = (
    "Hello, I would like to book a table for four people tomorrow evening at half past seven, "
    "and please remind me to call the plumber about the kitchen sink on Monday morning.",
    "What is the weather going to be like in the mountains this weekend? I am planning a long hike "
    "with my sister and her two dogs.",
    "Turn off the lights in the living room, then play some quiet music in the kitchen and set an "
    "alarm for six fifteen tomorrow.",
)
VOICES = (("en-us", 150), ("en-gb+f3", 165))
PIECE_S = 5.0


def espeak_speech() -> list[np.ndarray]:
    """Synthetic speech (espeak-ng), 16 kHz float32, generated in memory."""
    import soundfile as sf
    from scipy.signal import resample_poly

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SystemExit("espeak-ng is not installed; give --audio DIR")
    out = []
    for text in SENTENCES:
        for voice, speed in VOICES:
            argv = [exe, "-v", voice, "-s", str(speed), "--stdout", text]
            wav = subprocess.run(argv, check=True, capture_output=True).stdout  # noqa: S603 - fixed argv
            audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
            out.append(resample_poly(audio, SAMPLE_RATE // 100, rate // 100).astype(np.float32))
    return out


def folder_speech(folder: Path) -> list[np.ndarray]:
    from earshot.pipeline.decode import AudioError, decode_audio

    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            audio = decode_audio(path.read_bytes())
        except AudioError:
            continue
        if len(audio) >= PIECE_S * SAMPLE_RATE:
            out.append(audio[: 10 * SAMPLE_RATE])
    return out


def mp3_roundtrip(audio: np.ndarray, rate: int = SAMPLE_RATE, bit_rate: int = 64_000) -> np.ndarray:
    """Encode to MP3 in memory (optionally at another sample rate) and decode back to 16 kHz."""
    import av
    from scipy.signal import resample_poly

    from earshot.pipeline.decode import decode_audio

    if rate != SAMPLE_RATE:
        audio = resample_poly(audio, rate // 100, SAMPLE_RATE // 100).astype(np.float32)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(
            (np.clip(audio, -1, 1) * 32767).astype(np.int16)[None, :], format="s16", layout="mono"
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return decode_audio(buf.getvalue())


CODECS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mp3-16k-64k": mp3_roundtrip,
    "mp3-44k-64k": lambda a: mp3_roundtrip(a, rate=44_100),
}


def bark_nmr_db(host: np.ndarray, mark: np.ndarray) -> np.ndarray:
    """Mark-to-speech ratio per Bark band and 32 ms frame, for band-frames within 40 dB of the loudest."""
    freqs = np.fft.rfftfreq(wm.N_FFT, 1 / SAMPLE_RATE)
    bark = np.floor(13 * np.arctan(0.00076 * freqs) + 3.5 * np.arctan((freqs / 7500) ** 2)).astype(int)
    hs = np.abs(wm._stft(host)) ** 2
    ms = np.abs(wm._stft(mark.astype(np.float32))) ** 2
    bands = np.unique(bark[wm._LO : wm._HI])
    hb = np.stack([hs[:, bark == b].sum(axis=1) for b in bands], axis=1)
    mb = np.stack([ms[:, bark == b].sum(axis=1) for b in bands], axis=1)
    loud = hb > hb.max() * 1e-4
    return 10 * np.log10(np.maximum(mb[loud], 1e-30) / hb[loud])


def segmental_snr_db(host: np.ndarray, mark: np.ndarray) -> np.ndarray:
    n = len(host) // 512
    he = (host[: n * 512].astype(np.float64).reshape(n, 512) ** 2).sum(axis=1)
    me = (mark[: n * 512].astype(np.float64).reshape(n, 512) ** 2).sum(axis=1)
    active = he > he.max() * 1e-4
    return 10 * np.log10(he[active] / np.maximum(me[active], 1e-30))


def cpu_ms(fn: Callable[[], object], repeat: int = 7) -> tuple[float, float]:
    """(min, median) CPU milliseconds of `fn` in this process."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append((time.process_time() - start) * 1000)
    return min(times), float(np.median(times))


def evaluate(speech: list[np.ndarray], *, candidates: int, trims: int, seed: int = 1) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    key = rng.bytes(32)
    others = [int(v) for v in rng.integers(1, 2**47, candidates - 1)]
    piece = int(PIECE_S * SAMPLE_RATE)
    hits, tests, true_z = 0, 0, []
    false_matches, null_tests, null_z = 0, 0, []
    snr, seg_min, nmr = [], [], []
    for audio in speech:
        mark = int(rng.integers(1, 2**47))
        marked = wm.embed(audio, mark, key)
        snr.append(wm.snr_db(audio, marked))
        seg_min.append(float(segmental_snr_db(audio, marked - audio).min()))
        nmr.append(bark_nmr_db(audio, marked.astype(np.float64) - audio))
        for codec in CODECS.values():
            leaked, clean = codec(marked), codec(audio)
            for volume in (0.3, 2.0):
                for _ in range(trims):
                    start = int(rng.integers(0, max(1, len(leaked) - piece)))
                    cut = np.clip(leaked[start : start + piece] * volume, -1, 1)
                    found = wm.detect(cut, key, [mark, *others])
                    tests += 1
                    hits += found.match is not None and found.match.payload == mark
                    true_z.append(found.best.z if found.best else 0.0)
                    unmarked = np.clip(clean[start : start + piece] * volume, -1, 1)
                    for suspect, pool in ((unmarked, [mark, *others]), (cut, others)):
                        result = wm.detect(suspect, key, pool)
                        null_tests += 1
                        false_matches += result.match is not None
                        null_z.append(result.best.z if result.best else 0.0)
    all_nmr = np.concatenate(nmr)
    ten_s = np.resize(speech[0], 10 * SAMPLE_RATE)
    emb_min, emb_med = cpu_ms(lambda: wm.embed(ten_s, 1, key))
    pool = [1, *range(2, 5001)]
    cut = ten_s[:piece]
    det_min, det_med = cpu_ms(lambda: wm.detect(cut, key, pool), repeat=3)
    return {
        "snippets": len(speech),
        "candidates_per_trace": candidates,
        "threshold_z": round(wm.threshold(candidates), 2),
        "detection": {
            "tests": tests,
            "found": hits,
            "rate": hits / tests,
            "z_min": round(min(true_z), 2),
            "z_median": round(float(np.median(true_z)), 2),
        },
        "false_match": {
            "tests": null_tests,
            "matches": false_matches,
            "best_z_max": round(max(null_z), 2),
            "best_z_median": round(float(np.median(null_z)), 2),
        },
        "audibility": {
            "snr_db_min": round(min(snr), 2),
            "snr_db_median": round(float(np.median(snr)), 2),
            "segmental_snr_db_min": round(min(seg_min), 2),
            "bark_nmr_db_p99": round(float(np.percentile(all_nmr, 99)), 2),
            "bark_nmr_db_max": round(float(all_nmr.max()), 2),
        },
        "speed_cpu_ms": {
            "embed_10s_min": round(emb_min, 2),
            "embed_10s_median": round(emb_med, 2),
            "trace_5s_5000_candidates_min": round(det_min, 1),
            "trace_5s_5000_candidates_median": round(det_med, 1),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, help="folder of speech recordings (default: espeak-ng)")
    parser.add_argument("--candidates", type=int, default=2000)
    parser.add_argument("--trims", type=int, default=3, help="random 5 s pieces per snippet and attack")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    speech = folder_speech(args.audio) if args.audio else espeak_speech()
    report = evaluate(speech, candidates=args.candidates, trims=args.trims)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)  # noqa: T201 - a command-line report


if __name__ == "__main__":  # pragma: no cover
    main()
