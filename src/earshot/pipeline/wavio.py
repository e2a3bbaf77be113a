"""Snippet audio as a minimal WAV, in memory: RIFF + fmt + data, nothing else.

The file a reviewer hears must carry no metadata at all (no LIST/INFO, no ID3, no timestamps,
no encoder tag), so the header is written by hand rather than by a library that may add chunks.
"""

from __future__ import annotations

import struct

import numpy as np

from earshot.pipeline.decode import decode_audio
from earshot.pipeline.types import SAMPLE_RATE, Audio

WAV_HEADER_BYTES = 44


def encode_wav(audio: Audio) -> bytes:
    """16-bit PCM, mono, 16 kHz WAV bytes of float audio in [-1, 1] (clipped, NaN -> 0)."""
    x = np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1), nan=0.0)
    pcm = np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
    return b"".join(
        [
            b"RIFF",
            struct.pack("<I", 4 + (8 + len(fmt)) + (8 + len(pcm))),
            b"WAVE",
            b"fmt ",
            struct.pack("<I", len(fmt)),
            fmt,
            b"data",
            struct.pack("<I", len(pcm)),
            pcm,
        ]
    )


def wav_chunks(data: bytes) -> list[str]:
    """The chunk ids of a RIFF/WAVE file, in order (to check that nothing but fmt/data is there)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    ids = []
    pos = 12
    while pos + 8 <= len(data):
        ids.append(data[pos : pos + 4].decode("latin-1"))
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        pos += 8 + size + (size & 1)
    return ids


def decode_wav(data: bytes) -> Audio:
    """Float32 mono 16 kHz samples of WAV bytes (any WAV; goes through `decode_audio`)."""
    return decode_audio(data)
