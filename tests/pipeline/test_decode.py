"""decode_audio: every accepted format decodes to 16 kHz mono; every bad input gets its error."""

from __future__ import annotations

import io
import wave

import av
import numpy as np
import pytest

from earshot.pipeline.decode import (
    AudioError,
    EmptyAudio,
    NotAudio,
    TooLong,
    TruncatedAudio,
    UnsupportedCodec,
    decode_audio,
)
from earshot.pipeline.types import SAMPLE_RATE
from tests.pipeline.audio_helpers import FORMATS, encode


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Peak normalised cross-correlation within +-200 ms (codecs add priming delay)."""
    n = len(a) + len(b)
    xc = np.fft.irfft(np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n)), n)
    lags = np.r_[xc[: SAMPLE_RATE // 5], xc[-SAMPLE_RATE // 5 :]]
    return float(lags.max() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


@pytest.mark.parametrize("kind", sorted(FORMATS))
@pytest.mark.parametrize("channels", [1, 2])
def test_each_format_decodes_to_16k_mono(sentence: np.ndarray, kind: str, channels: int) -> None:
    audio = decode_audio(encode(sentence, kind, channels=channels))
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - len(sentence)) / SAMPLE_RATE < 0.15  # codec priming/padding only
    assert float(np.abs(audio).max()) <= 1.0
    # Same signal (stereo is averaged, not summed: the level is the original's).
    assert _similarity(sentence, audio) > 0.9
    assert 0.8 < float(np.abs(audio).max() / np.abs(sentence).max()) < 1.2


def test_empty_upload_and_zero_samples() -> None:
    with pytest.raises(EmptyAudio):
        decode_audio(b"")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(b"")
    with pytest.raises(EmptyAudio):
        decode_audio(buf.getvalue())


@pytest.mark.parametrize("n", [1, 7, 1000, 200_000])
def test_random_bytes_are_not_audio(n: int) -> None:
    with pytest.raises(NotAudio):
        decode_audio(np.random.default_rng(n).bytes(n))


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is just text\n" * 50,
        b"%PDF-1.4\n" + b"0" * 3000,
        b"#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
        b"ffconcat version 1.0\nfile '/etc/passwd'\n",
    ],
    ids=["text", "pdf", "hls-playlist", "concat-list"],
)
def test_documents_and_playlists_are_refused(data: bytes) -> None:
    with pytest.raises(NotAudio):
        decode_audio(data)


@pytest.mark.parametrize("kind", ["wav", "flac", "mp3", "m4a", "ogg_opus", "webm_opus"])
def test_file_cut_in_half_is_truncated(sentence: np.ndarray, kind: str) -> None:
    data = encode(sentence, kind)
    with pytest.raises(TruncatedAudio):
        decode_audio(data[: len(data) // 2])
    with pytest.raises(TruncatedAudio):
        decode_audio(data[:64])  # header only


def _with_data_size(data: bytes, size: int) -> bytes:
    out = bytearray(data)
    i = out.find(b"data")
    out[i + 4 : i + 8] = size.to_bytes(4, "little")
    out[4:8] = min(size + 36, 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(out)


def test_huge_declared_wav_size_is_an_error_not_an_allocation(sentence: np.ndarray) -> None:
    with pytest.raises(TruncatedAudio):
        decode_audio(_with_data_size(encode(sentence, "wav"), 0x10000000))


@pytest.mark.parametrize("size", [0, 0x7FFFF000, 0xFFFFFFFF])
def test_streaming_wav_placeholder_sizes_decode_what_is_there(sentence: np.ndarray, size: int) -> None:
    # Writers that stream (espeak-ng to a pipe, recorders) cannot know the size in advance.
    audio = decode_audio(_with_data_size(encode(sentence, "wav"), size))
    assert abs(len(audio) - len(sentence)) < SAMPLE_RATE // 10


def _video_mp4(with_audio: bool) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        audio = out.add_stream("aac", rate=16000, layout="mono") if with_audio else None
        for _ in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            for packet in video.encode(frame):
                out.mux(packet)
        if audio is not None:
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in [*audio.encode(frame), *audio.encode(None)]:
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize("with_audio", [False, True])
def test_video_files_are_unsupported(with_audio: bool) -> None:
    with pytest.raises(UnsupportedCodec):
        decode_audio(_video_mp4(with_audio))


def test_audio_codec_outside_the_allow_list_is_unsupported(sentence: np.ndarray) -> None:
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        stream = out.add_stream("ac3", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            (sentence[None, :] * 32767).astype(np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=48000)
        for f in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(UnsupportedCodec):
        decode_audio(buf.getvalue())


@pytest.mark.parametrize("kind", ["wav", "flac", "mp3", "m4a", "ogg_opus"])
def test_too_long_by_declared_duration(sentence: np.ndarray, kind: str) -> None:
    with pytest.raises(TooLong):
        decode_audio(encode(sentence, kind), max_duration_s=1.0)
    assert len(decode_audio(encode(sentence, kind), max_duration_s=10.0)) > 0


def test_too_long_caught_while_decoding_when_nothing_is_declared(sentence: np.ndarray) -> None:
    data = bytearray(encode(np.tile(sentence, 3), "wav"))
    i = data.find(b"data")
    data[i + 4 : i + 8] = (0xFFFFFFFF).to_bytes(4, "little")  # streaming header: no length
    with pytest.raises(TooLong):
        decode_audio(bytes(data), max_duration_s=2.0)


def test_decompression_bomb_is_refused_quickly() -> None:
    # 11 minutes of silence compress to a few KB of FLAC.
    data = encode(np.zeros(SAMPLE_RATE * 60 * 11, np.float32), "flac")
    assert len(data) < 2_000_000
    with pytest.raises(TooLong):
        decode_audio(data, max_duration_s=600)


def test_error_codes_and_messages_are_safe(sentence: np.ndarray) -> None:
    cases = {
        "empty_audio": b"",
        "not_audio": b"Jane Doe, 4111 1111 1111 1111, jane@example.com" * 20,
        "truncated_audio": encode(sentence, "flac")[:5000],
    }
    for code, data in cases.items():
        with pytest.raises(AudioError) as info:
            decode_audio(data)
        assert info.value.code == code
        assert isinstance(info.value, ValueError)
        assert "Jane" not in str(info.value) and "4111" not in str(info.value)
