"""The stored form of a snippet's audio: 16-bit PCM WAV, mono, 16 kHz, in memory only."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from earshot.pipeline.types import SAMPLE_RATE, Audio


def encode_wav(audio: Audio, sample_rate: int = SAMPLE_RATE) -> bytes:
    """WAV bytes (PCM_16) of float audio in [-1, 1]."""
    buf = io.BytesIO()
    sf.write(
        buf,
        np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0),
        sample_rate,
        format="WAV",
        subtype="PCM_16",
    )
    return buf.getvalue()


def decode_wav(data: bytes) -> tuple[Audio, int]:
    """(float32 mono audio, sample rate) of WAV bytes."""
    audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return audio.mean(axis=1).astype(np.float32), int(rate)
