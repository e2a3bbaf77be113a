"""Test audio helpers: espeak-ng speech and in-memory encoders for every accepted format.

Test inputs are synthesised into pytest's tmp_path (never elsewhere) and encoded with PyAV in
memory, so every container/codec path of the decoder is exercised without shipping audio files.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from earshot.pipeline.types import SAMPLE_RATE

ESPEAK = shutil.which("espeak-ng")

# (container format, encoder, encoder sample rate) for each accepted upload kind.
FORMATS: dict[str, tuple[str, str, int]] = {
    "wav": ("wav", "pcm_s16le", 22050),
    "flac": ("flac", "flac", 22050),
    "mp3": ("mp3", "libmp3lame", 22050),
    "ogg_opus": ("ogg", "libopus", 48000),
    "m4a": ("ipod", "aac", 22050),
    "webm_opus": ("webm", "libopus", 48000),
}


def synth(text: str, path: Path, voice: str = "en-us") -> np.ndarray:
    """espeak-ng speech for `text` as float32 mono at SAMPLE_RATE."""
    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed; needed to synthesise test speech")
    subprocess.run([ESPEAK, "-v", voice, "-w", str(path), text], check=True, timeout=60)
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    path.unlink()
    x = pcm.astype(np.float32) / 32768.0
    if rate != SAMPLE_RATE:
        n = int(round(len(x) * SAMPLE_RATE / rate))
        x = np.interp(np.arange(n) * rate / SAMPLE_RATE, np.arange(len(x)), x).astype(np.float32)
    return x


def encode(audio: np.ndarray, kind: str, *, channels: int = 1) -> bytes:
    """Encode float32 mono 16 kHz `audio` into container/codec `kind` (see FORMATS), in memory."""
    fmt, codec, rate = FORMATS[kind]
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    layout = "mono" if channels == 1 else "stereo"
    data = np.repeat(pcm[None, :], channels, axis=0).T.reshape(1, -1)  # packed interleaved
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout=layout)
        frame.sample_rate = SAMPLE_RATE
        resampler = av.AudioResampler(format=stream.format.name, layout=layout, rate=rate)
        for f in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


SENTENCE = "Thank you for your help, and can you turn the music down a little bit?"

LONG_SENTENCES = [
    "Good morning, I am calling about the delivery that was supposed to arrive yesterday.",
    "The driver said he left it with a neighbour, but nobody on the street has seen it.",
    "Could you check where the parcel is right now?",
    "I have been waiting at home all week and I cannot keep taking days off work.",
    "If it is lost, I would like a refund or a replacement sent by express post.",
    "Thank you for your help, and sorry for the long message.",
]
