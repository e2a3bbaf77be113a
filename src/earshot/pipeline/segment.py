"""Find speech with the silero VAD and cut it at pauses into snippets of bounded length.

The VAD is the silero v6 ONNX model that ships inside faster-whisper, run with onnxruntime
(no torch), giving one speech probability per 32 ms frame. Frames are turned into speech runs
with hysteresis; runs separated by a long pause (>= `hard_gap_s`) are always separate; a
stretch longer than `max_snippet_s` is cut by dynamic programming that prefers few snippets,
cut at long, quiet pauses, and cuts inside speech only when there is no pause to use. Every
snippet, padding included, is at most `max_snippet_s` long; snippets with less than
`min_speech_s` of speech (clicks, coughs, accidental activations) are dropped.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from earshot.pipeline.types import SAMPLE_RATE, Audio, Span

FRAME = 512  # samples per VAD frame (32 ms at 16 kHz), fixed by the silero model
_FRAME_S = FRAME / SAMPLE_RATE


@dataclass(frozen=True)
class SegmentOptions:
    """Tuning of `segment`; the defaults suit conversational speech at 16 kHz."""

    threshold: float = 0.5  # speech starts when the probability reaches this
    neg_threshold: float = 0.35  # and ends when it falls below this
    min_gap_s: float = 0.1  # shorter dips inside speech are not pauses
    hard_gap_s: float = 1.0  # pauses at least this long always end a snippet
    min_speech_s: float = 0.3  # snippets with less speech than this are dropped
    pad_s: float = 0.2  # context kept around speech (never beyond a cut, never over the max)


class SileroVad:
    """Per-frame speech probabilities from the silero ONNX model bundled with faster-whisper."""

    def __init__(self, model_path: str | None = None) -> None:
        import onnxruntime

        if model_path is None:
            from faster_whisper.utils import get_assets_path

            model_path = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.enable_cpu_mem_arena = False
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            model_path, providers=["CPUExecutionProvider"], sess_options=opts
        )

    def probabilities(self, audio: Audio) -> np.ndarray:
        """Speech probability of each 32 ms frame of `audio` (the last frame zero-padded)."""
        n_frames = -(-len(audio) // FRAME)
        if n_frames == 0:
            return np.zeros(0, dtype=np.float32)
        padded = np.zeros(n_frames * FRAME, dtype=np.float32)
        padded[: len(audio)] = audio
        # Same framing as faster_whisper.vad.SileroVADModel: each frame carries the 64 samples
        # before it as context; frames go through the model in large batches.
        frames = padded.reshape(-1, FRAME)
        context = np.roll(frames[:, -64:], 1, axis=0)
        context[0] = 0
        batched = np.concatenate([context, frames], axis=1)
        h = np.zeros((1, 1, 128), dtype=np.float32)
        c = np.zeros((1, 1, 128), dtype=np.float32)
        outputs = []
        for i in range(0, n_frames, 10_000):
            out, h, c = self._session.run(None, {"input": batched[i : i + 10_000], "h": h, "c": c})
            outputs.append(np.asarray(out).reshape(-1))
        return np.concatenate(outputs)[:n_frames].astype(np.float32)


@functools.lru_cache(maxsize=1)
def get_vad() -> SileroVad:
    """The process-wide VAD (loaded once)."""
    return SileroVad()


def segment(
    audio: Audio,
    *,
    max_snippet_s: float = 10.0,
    options: SegmentOptions | None = None,
    vad: SileroVad | None = None,
) -> list[Span]:
    """Speech regions of `audio` cut at pauses into snippets of at most `max_snippet_s` seconds.

    Returns spans in seconds relative to `audio`, in order and not overlapping; `[]` when there
    is no speech.
    """
    if max_snippet_s <= 2 * _FRAME_S:
        raise ValueError("max_snippet_s is too small")
    opts = options or SegmentOptions()
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if len(audio) < FRAME:
        return []
    probs = (vad or get_vad()).probabilities(audio)
    speech = _speech_mask(probs, opts)
    if not speech.any():
        return []
    energy = _frame_energy(audio, len(probs))
    spans: list[Span] = []
    for g_start, g_end in _groups(speech, opts):
        spans.extend(_cut_group(speech, probs, energy, g_start, g_end, len(audio), max_snippet_s, opts))
    return spans


def _speech_mask(probs: np.ndarray, opts: SegmentOptions) -> np.ndarray:
    """Hysteresis thresholding, then short dips inside speech filled in."""
    mask = np.zeros(len(probs), dtype=bool)
    active = False
    for i, p in enumerate(probs):
        if active:
            active = p >= opts.neg_threshold
        else:
            active = p >= opts.threshold
        mask[i] = active
    min_gap = max(1, int(round(opts.min_gap_s / _FRAME_S)))
    for start, end in _runs(~mask):
        if start > 0 and end < len(mask) and end - start < min_gap:
            mask[start:end] = True
    return mask


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges where `mask` is True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _frame_energy(audio: Audio, n_frames: int) -> np.ndarray:
    padded = np.zeros(n_frames * FRAME, dtype=np.float32)
    padded[: len(audio)] = audio
    return np.sqrt(np.mean(padded.reshape(n_frames, FRAME) ** 2, axis=1) + 1e-12)


def _groups(speech: np.ndarray, opts: SegmentOptions) -> list[tuple[int, int]]:
    """Frame ranges of speech separated by pauses of at least `hard_gap_s`."""
    hard_gap = int(round(opts.hard_gap_s / _FRAME_S))
    groups: list[tuple[int, int]] = []
    for start, end in _runs(speech):
        if groups and start - groups[-1][1] < hard_gap:
            groups[-1] = (groups[-1][0], end)
        else:
            groups.append((start, end))
    return groups


def _cut_group(
    speech: np.ndarray,
    probs: np.ndarray,
    energy: np.ndarray,
    g_start: int,
    g_end: int,
    n_samples: int,
    max_snippet_s: float,
    opts: SegmentOptions,
) -> list[Span]:
    """Cut one group [g_start, g_end) (frames) into snippets; see the module docstring."""
    pad = int(opts.pad_s * SAMPLE_RATE)
    max_len = int(max_snippet_s * SAMPLE_RATE)
    n_frames = len(speech)
    # Candidate cut positions (frame boundaries) with their cost.
    positions = [g_start]
    costs = [0.0]
    sub = speech[g_start:g_end]
    gaps = [(g_start + a, g_start + b) for a, b in _runs(~sub)]
    gap_cut = {}
    for a, b in gaps:
        length_s = (b - a) * _FRAME_S
        quietness = 1.0 - float(np.mean(probs[a:b]))
        quality = length_s / (length_s + 0.2) * (0.5 + 0.5 * quietness)
        gap_cut[(a + b) // 2] = 2.0 * (1.0 - quality)
    # Inside speech: the quietest frame boundary of each short block, used only when needed.
    block = max(2, min(8, int(max_snippet_s / _FRAME_S) // 4))
    speech_cut = {}
    for a, b in _runs(sub):
        a, b = g_start + a, g_start + b
        loud = float(np.max(energy[a:b])) + 1e-9
        for s in range(a + 1, b, block):
            e = min(s + block, b)
            k = s + int(np.argmin(energy[s:e]))
            speech_cut[k] = 10.0 + 5.0 * float(energy[k]) / loud
    cuts = {**speech_cut, **gap_cut}
    for pos in sorted(cuts):
        positions.append(pos)
        costs.append(cuts[pos])
    positions.append(g_end)
    costs.append(0.0)

    # prefix sums to count speech frames and find speech edges quickly
    cum = np.concatenate([[0], np.cumsum(speech)])
    speech_idx = np.flatnonzero(speech)

    def extent(i: int, j: int) -> tuple[int, int, int]:
        a, b = positions[i], positions[j]
        n_speech = int(cum[b] - cum[a])
        if n_speech == 0:
            return a * FRAME, a * FRAME, 0
        first = int(speech_idx[np.searchsorted(speech_idx, a)])
        last = int(speech_idx[np.searchsorted(speech_idx, b) - 1]) + 1
        lo = a * FRAME if i > 0 else 0
        hi = b * FRAME if j < len(positions) - 1 else n_frames * FRAME
        start = max(lo, first * FRAME - pad)
        end = min(hi, last * FRAME + pad, n_samples)
        return start, max(end, start), n_speech

    n = len(positions)
    best = np.full(n, np.inf)
    back = np.zeros(n, dtype=np.int64)
    best[0] = 0.0
    max_frames = max_len // FRAME + 1
    min_piece = int(1.5 / _FRAME_S)
    # a piece may span more frames than it keeps: the silent halves of the gaps at its ends
    reach = max_frames + 2 * int(opts.hard_gap_s / _FRAME_S) + 2
    for j in range(1, n):
        i = j - 1
        while i >= 0 and positions[j] - positions[i] <= reach:
            if np.isfinite(best[i]):
                start, end, n_speech = extent(i, j)
                if end - start <= max_len:
                    cost = best[i] + 1.0 + costs[j]
                    if 0 < n_speech < min_piece:
                        cost += 1.0
                    if cost < best[j]:
                        best[j] = cost
                        back[j] = i
            i -= 1
    if not np.isfinite(best[n - 1]):  # cannot happen with block-spaced candidates; be safe
        raise RuntimeError("segmentation found no valid cut")
    chain = [n - 1]
    while chain[-1] != 0:
        chain.append(int(back[chain[-1]]))
    chain.reverse()
    spans = []
    min_speech = opts.min_speech_s / _FRAME_S
    for i, j in zip(chain[:-1], chain[1:], strict=True):
        start, end, n_speech = extent(i, j)
        if n_speech >= min_speech and end > start:
            spans.append(Span(start / SAMPLE_RATE, end / SAMPLE_RATE))
    return spans
