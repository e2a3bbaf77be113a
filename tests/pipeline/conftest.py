"""Shared fixtures for the pipeline tests: espeak-ng speech and in-memory encoders.

Test inputs are synthesised into pytest's tmp_path (never elsewhere) and encoded with PyAV in
memory, so every container/codec path of the decoder is exercised without shipping audio files.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from collections.abc import Callable
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


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def say(speech_dir: Path) -> Callable[..., np.ndarray]:
    """`say(text, voice="en-us")` -> float32 16 kHz speech (cached per text and voice)."""
    cache: dict[tuple[str, str], np.ndarray] = {}

    def _say(text: str, voice: str = "en-us") -> np.ndarray:
        key = (text, voice)
        if key not in cache:
            cache[key] = synth(text, speech_dir / f"s{len(cache)}.wav", voice)
        return cache[key].copy()

    return _say


SENTENCE = "Thank you for your help, and can you turn the music down a little bit?"


@pytest.fixture(scope="session")
def sentence(say: Callable[..., np.ndarray]) -> np.ndarray:
    return say(SENTENCE)


LONG_SENTENCES = [
    "Good morning, I am calling about the delivery that was supposed to arrive yesterday.",
    "The driver said he left it with a neighbour, but nobody on the street has seen it.",
    "Could you check where the parcel is right now?",
    "I have been waiting at home all week and I cannot keep taking days off work.",
    "If it is lost, I would like a refund or a replacement sent by express post.",
    "Thank you for your help, and sorry for the long message.",
]


@pytest.fixture(scope="session")
def long_speech(say: Callable[..., np.ndarray]) -> np.ndarray:
    """About 40 s of speech: sentences with pauses of 0.15-0.9 s, one run-on stretch > 10 s."""
    rng = np.random.default_rng(7)
    voices = ["en-us", "en-us+f2", "en-gb-x-rp+m3"]
    parts = [np.zeros(SAMPLE_RATE // 2, np.float32)]
    for round_ in range(2):
        for i, text in enumerate(LONG_SENTENCES):
            parts.append(say(text, voices[(i + round_) % len(voices)]))
            pause = 0.15 if (round_ == 0 and i < 3) else float(rng.uniform(0.3, 0.9))
            parts.append(np.zeros(int(pause * SAMPLE_RATE), np.float32))
    return np.concatenate(parts)


@pytest.fixture(scope="session")
def transcriber():  # noqa: ANN201 - the session's one WhisperTranscriber
    from earshot.pipeline.asr import get_transcriber

    return get_transcriber()


@pytest.fixture(scope="session")
def pipeline(transcriber):  # noqa: ANN001, ANN201 - one DeidPipeline (models loaded once)
    from earshot.pipeline.deid import DeidPipeline

    return DeidPipeline(transcriber=transcriber)
