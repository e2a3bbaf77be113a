"""The fallback ASR: CMU PocketSphinx with the en-us model shipped inside its PyPI package.

Chosen with `asr_backend = "pocketsphinx"` (DESIGN.md: "pocketsphinx as a fallback") where the
Whisper weights cannot be installed; also the evaluation's second, independent ASR judge
(`earshot eval --judge pocketsphinx`). Far less accurate than tiny.en, but it gives word timings
and runs offline. Its own logging is switched off (it would print what it recognised).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence

import numpy as np

from earshot.pipeline.types import SAMPLE_RATE, Audio, Transcript, Word

_FRAMES_PER_S = 100  # PocketSphinx's default frame rate
_LOG_BASE = math.log(1.0001)
_PAD_S = 0.25
_NOISE_FLOOR = 1e-3  # its scores are logarithms in base 1.0001
_FILLER = re.compile(r"^(<s>|</s>|<sil>|\[.*\]|\+\+.*\+\+)$")
_ALTERNATE = re.compile(r"\(\d+\)$")  # "read(2)": the dictionary's second pronunciation


class PocketsphinxTranscriber:
    """PocketSphinx en-us (acoustic model, 3-gram LM, CMU dictionary); thread-safe, one
    decoder per instance, one utterance at a time."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", logfn="/dev/null")
        self._lock = threading.Lock()

    def transcribe(self, audio: Audio) -> Transcript:
        """Words with timings relative to `audio` (16 kHz mono float32); empty if no speech."""
        x = np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1))
        if x.size < SAMPLE_RATE // 10:
            return Transcript(text="", words=[])
        # Digital silence (synthetic speech, redacted stretches) breaks PocketSphinx's noise
        # tracking: pad both ends and add a fixed -60 dBFS noise floor (measured: espeak
        # sentences go from mostly wrong to right).
        pad = np.zeros(int(_PAD_S * SAMPLE_RATE), np.float32)
        x = np.concatenate([pad, x, pad])
        x = x + _NOISE_FLOOR * np.random.default_rng(0).standard_normal(x.size).astype(np.float32)
        pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        with self._lock:
            d = self._decoder
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            segments = [(s.word, s.start_frame, s.end_frame, s.prob) for s in d.seg()]
        words = [
            Word(
                _ALTERNATE.sub("", w),
                round(start / _FRAMES_PER_S, 3),
                round(min((end + 1) / _FRAMES_PER_S, x.size / SAMPLE_RATE - 2 * _PAD_S), 3),
                float(min(1.0, math.exp(prob * _LOG_BASE))),  # log base 1.0001 -> probability
            )
            for w, start, end, prob in (
                (w, max(0.0, a - _PAD_S * _FRAMES_PER_S), b - _PAD_S * _FRAMES_PER_S, p)
                for w, a, b, p in segments
            )
            if not _FILLER.match(w) and end > 0
        ]
        return Transcript(text=" ".join(w.text for w in words), words=words)

    def transcribe_batch(self, audios: Sequence[Audio]) -> list[Transcript]:
        """One after the other (PocketSphinx has no batched mode)."""
        return [self.transcribe(a) for a in audios]
