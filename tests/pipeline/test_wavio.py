"""Snippet WAVs: 16-bit PCM mono 16 kHz, RIFF/fmt/data only, round trip through the decoder."""

from __future__ import annotations

import io
import wave

import numpy as np

from earshot.pipeline.types import SAMPLE_RATE
from earshot.pipeline.wavio import WAV_HEADER_BYTES, decode_wav, encode_wav, wav_chunks


def test_wav_has_no_metadata_chunks_and_exact_size() -> None:
    audio = np.sin(np.arange(SAMPLE_RATE) / 10).astype(np.float32) * 0.5
    data = encode_wav(audio)
    assert wav_chunks(data) == ["fmt ", "data"]
    assert len(data) == WAV_HEADER_BYTES + 2 * len(audio)
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SAMPLE_RATE)
        assert w.getnframes() == len(audio)


def test_round_trip_and_clipping() -> None:
    audio = np.array([0.0, 0.5, -0.5, 2.0, -2.0, np.nan], dtype=np.float32)
    back = decode_wav(encode_wav(np.tile(audio, 100)))[:6]
    assert np.allclose(back, [0.0, 0.5, -0.5, 1.0, -1.0, 0.0], atol=1e-4)
