"""Evaluation data sets: a folder with MANIFEST.tsv (`path<TAB>speaker<TAB>transcript`, header)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from earshot.pipeline.types import SAMPLE_RATE, Audio


class ManifestError(ValueError):
    """The manifest or one of its audio files cannot be used (message carries no content)."""


@dataclass(frozen=True)
class Utterance:
    """One manifest row: audio path (absolute), speaker label, reference transcript; `parts`:
    the further files of an utterance joined from several rows (`join_utterances`)."""

    path: Path
    speaker: str
    transcript: str
    parts: tuple[Path, ...] = ()


def read_manifest(manifest: Path) -> list[Utterance]:
    """Parse MANIFEST.tsv; paths are resolved relative to the manifest's folder."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ManifestError(f"manifest not found: {manifest}")
    rows: list[Utterance] = []
    with manifest.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:3]] != ["path", "speaker", "transcript"]:
            raise ManifestError("manifest header must be: path, speaker, transcript (tab-separated)")
        for lineno, row in enumerate(reader, start=2):
            if not row or not row[0].strip():
                continue
            if len(row) < 3:
                raise ManifestError(f"manifest line {lineno}: expected 3 tab-separated columns")
            rows.append(Utterance(manifest.parent / row[0].strip(), row[1].strip(), row[2].strip()))
    if not rows:
        raise ManifestError("manifest has no rows")
    return rows


def limit_balanced(rows: list[Utterance], limit: int | None) -> list[Utterance]:
    """At most `limit` rows, taken round-robin over speakers so every speaker keeps some."""
    if limit is None or limit >= len(rows):
        return list(rows)
    by_spk: dict[str, list[Utterance]] = {}
    for r in rows:
        by_spk.setdefault(r.speaker, []).append(r)
    chosen: list[Utterance] = []
    depth = 0
    while len(chosen) < limit:
        for spk in sorted(by_spk):
            if depth < len(by_spk[spk]) and len(chosen) < limit:
                chosen.append(by_spk[spk][depth])
        depth += 1
    order = {id(r): i for i, r in enumerate(rows)}
    return sorted(chosen, key=lambda r: order[id(r)])


def join_utterances(rows: list[Utterance], k: int, seed: int = 0) -> list[Utterance]:
    """Utterances of `k` rows each, of one speaker (in a seeded random order within the speaker,
    so that joined single digits make digit strings, not "zero zero zero"); an incomplete last
    group is dropped. Speakers keep their order of first appearance."""
    if k <= 1:
        return list(rows)
    by_spk: dict[str, list[Utterance]] = {}
    for r in rows:
        by_spk.setdefault(r.speaker, []).append(r)
    out: list[Utterance] = []
    for n, (spk, items) in enumerate(by_spk.items()):
        order = np.random.default_rng([seed, n]).permutation(len(items))
        for g in range(len(items) // k):
            group = [items[i] for i in order[g * k : (g + 1) * k]]
            out.append(Utterance(
                group[0].path, spk, " ".join(u.transcript for u in group),
                tuple(u.path for u in group[1:]),
            ))  # fmt: skip
    return out


JOIN_GAP_S = 0.2


def load_utterance(utt: Utterance) -> Audio:
    """The utterance's audio: its file, or its files joined with `JOIN_GAP_S` of silence."""
    if not utt.parts:
        return load_audio(utt.path)
    gap = np.zeros(int(JOIN_GAP_S * SAMPLE_RATE), np.float32)
    pieces = [load_audio(p) for p in (utt.path, *utt.parts)]
    return np.concatenate([x for p in pieces for x in (p, gap)][:-1])


def load_audio(path: Path) -> Audio:
    """Read a WAV/FLAC file as float32 mono at SAMPLE_RATE (channels averaged, resampled)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types; keep the message content-free
        raise ManifestError(f"cannot read audio file {path.name}") from exc
    x = data.mean(axis=1)
    if rate != SAMPLE_RATE:
        g = gcd(int(rate), SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def telephone_band(x: Audio) -> Audio:
    """`x` (16 kHz) as a telephone call delivers it: through an 8 kHz channel and back, so
    nothing is left above 4 kHz (what intake decodes from an 8 kHz recording)."""
    from scipy.signal import resample_poly

    y = resample_poly(resample_poly(np.asarray(x, dtype=np.float64), 1, 2), 2, 1)[: len(x)]
    return np.ascontiguousarray(y, dtype=np.float32)
