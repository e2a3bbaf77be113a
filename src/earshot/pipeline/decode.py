"""Decode an uploaded recording (any common audio format) into 16 kHz mono float32, in memory.

Everything happens on a `BytesIO`: no temporary file ever holds the audio. Input is treated as
hostile: only an allow-list of audio containers and codecs is accepted, FFmpeg may not open any
other file or URL on its behalf (playlists, concat lists), the declared duration is checked
before decoding and the decoded duration is capped while decoding (decompression bombs), and a
file whose decodable audio is much shorter than its header declares is reported as truncated.
Every failure is an `AudioError` whose message never contains any of the content.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import av
import numpy as np

from earshot.pipeline.types import SAMPLE_RATE, Audio

logger = logging.getLogger(__name__)

# Upper bound on decoded length when the caller sets none: stops a tiny file that decodes into
# hours of audio from exhausting memory.
HARD_MAX_DURATION_S = 4 * 3600.0

# Demuxers we accept (FFmpeg `format.name` items). Everything else, notably playlist and
# concat demuxers that would open further files, raw/text formats and image formats, is refused.
ALLOWED_FORMATS = frozenset(
    {
        "wav", "w64", "flac", "mp3", "ogg", "mov", "mp4", "m4a", "3gp", "3g2", "mj2",
        "matroska", "webm", "aac", "aiff", "caf", "amr", "amrnb", "amrwb",
    }
)  # fmt: skip

# Audio codecs we accept (FFmpeg decoder names); `pcm_*` is allowed as a family.
ALLOWED_CODECS = frozenset(
    {
        "flac", "mp3", "mp3float", "mp2", "mp2float", "vorbis", "libvorbis", "opus", "libopus",
        "aac", "aac_fixed", "alac", "amrnb", "amrwb", "libopencore_amrnb", "libopencore_amrwb",
    }
)  # fmt: skip

# A decoded length shorter than the declared one by more than this (seconds and share) means
# the file was cut.
TRUNCATION_TOLERANCE_S = 0.25
TRUNCATION_TOLERANCE_SHARE = 0.03

# Leading bytes of the containers we accept; a file starting with one of these that cannot be
# opened or decoded is broken or cut rather than "not audio".
_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"ID3", b"FORM", b"caff", b"\x1a\x45\xdf\xa3")


class AudioError(ValueError):
    """The upload cannot be used as audio. `code` is stable for APIs; the message is safe to show."""

    code = "bad_audio"
    default_message = "the upload is not usable audio"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class EmptyAudio(AudioError):
    code = "empty_audio"
    default_message = "the upload contains no audio samples"


class NotAudio(AudioError):
    code = "not_audio"
    default_message = "the upload is not a recognised audio file"


class TruncatedAudio(AudioError):
    code = "truncated_audio"
    default_message = "the audio file is truncated or corrupt"


class UnsupportedCodec(AudioError):
    code = "unsupported_codec"
    default_message = "the file has no audio stream in a supported codec"


class TooLong(AudioError):
    code = "too_long"

    def __init__(self, limit_s: float) -> None:
        super().__init__(f"the recording is longer than the limit of {limit_s:g} s")
        self.limit_s = limit_s


def _refuse_nested_open(url: str, flags: int, options: dict[str, Any]) -> None:
    """FFmpeg asks to open another resource (playlist entry, concat item): never allowed."""
    raise PermissionError("nested resources are not allowed")


def _looks_like_audio_container(data: bytes) -> bool:
    head = data[:16]
    if head.startswith(_MAGIC):
        return True
    if head[4:8] == b"ftyp":  # MP4 / M4A / 3GP
        return True
    # MPEG audio frame sync (MP3/MP2 without ID3) or ADTS AAC.
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0


def _riff_truncated(data: bytes) -> bool:
    """A RIFF/WAVE file whose `data` chunk declares more bytes than the file holds was cut.

    FFmpeg silently clamps the duration of such a file to what is there, so check it here.
    Streaming writers that do not know the size write 0, 0xFFFFFFFF or a near-2 GiB placeholder
    (espeak-ng and others write 0x7FFFF000): those are not judged.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return False
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk_id == b"data":
            if size == 0 or size >= 0x7FFF0000:
                return False
            return pos + 8 + size > len(data)
        pos += 8 + size + (size & 1)
    return True  # the header ends before any data chunk


def _ogg_truncated(data: bytes) -> bool:
    """An Ogg stream must end with a complete page flagged end-of-stream; a cut one does not.

    FFmpeg reads the duration from the last complete page, so a cut file otherwise looks whole.
    """
    if not data.startswith(b"OggS"):
        return False
    last = data.rfind(b"OggS")
    if last < 0 or last + 27 > len(data):
        return True
    n_segments = data[last + 26]
    table = data[last + 27 : last + 27 + n_segments]
    if len(table) < n_segments:
        return True
    end = last + 27 + n_segments + sum(table)
    header_type = data[last + 5]
    return end != len(data) or not (header_type & 0x04)


def _format_names(container: av.container.InputContainer) -> set[str]:
    return {name.strip() for name in container.format.name.split(",")}


def _codec_allowed(name: str) -> bool:
    return name.startswith("pcm_") or name in ALLOWED_CODECS


def _declared_duration_s(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> float | None:
    """What the header says, if anything: the stream's duration, else the container's."""
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def decode_audio(data: bytes, *, max_duration_s: float | None = None) -> Audio:
    """Decode `data` into float32 mono samples at `SAMPLE_RATE`, or raise an `AudioError`.

    `max_duration_s` bounds the recording (declared length checked first, decoded length while
    decoding); without it `HARD_MAX_DURATION_S` still applies.
    """
    if not data:
        raise EmptyAudio()
    limit_s = max_duration_s if max_duration_s is not None else HARD_MAX_DURATION_S
    recognised = _looks_like_audio_container(data)
    try:
        container = av.open(
            io.BytesIO(data),
            mode="r",
            metadata_errors="ignore",
            io_open=_refuse_nested_open,
            options={"protocol_whitelist": "none"},
        )
    except (av.FFmpegError, PermissionError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise (TruncatedAudio() if recognised else NotAudio()) from exc
    try:
        return _decode_container(container, data, limit_s=limit_s, recognised=recognised)
    finally:
        container.close()


def _decode_container(
    container: av.container.InputContainer, data: bytes, *, limit_s: float, recognised: bool
) -> Audio:
    if not (_format_names(container) & ALLOWED_FORMATS):
        raise NotAudio()
    real_video = [
        s
        for s in container.streams.video
        if not (s.disposition & av.stream.Disposition.attached_pic)  # cover art is fine
    ]
    if real_video:
        raise UnsupportedCodec("video files are not accepted; send audio only")
    audio_streams = [s for s in container.streams.audio if s.codec_context is not None]
    if not audio_streams:
        raise UnsupportedCodec()
    stream = audio_streams[0]
    if not _codec_allowed(stream.codec_context.name):
        raise UnsupportedCodec()

    if _riff_truncated(data) or _ogg_truncated(data):
        raise TruncatedAudio()
    declared_s = _declared_duration_s(container, stream)
    if declared_s is not None and declared_s > limit_s + 1.0:
        raise TooLong(limit_s)

    max_samples = int(limit_s * SAMPLE_RATE) + SAMPLE_RATE  # one second of resampler slack
    # Resample keeping the channels (planar float), then average them: FFmpeg's own mono
    # downmix sums channels and would clip a loud stereo file.
    resampler = av.AudioResampler(format="fltp", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    errors = 0
    frames_ok = 0

    def take(frames: list[av.AudioFrame]) -> None:
        nonlocal total
        for out in frames:
            planes = out.to_ndarray()
            arr = planes[0] if planes.shape[0] == 1 else planes.mean(axis=0)
            chunks.append(arr)
            total += arr.shape[0]
        if total > max_samples:
            raise TooLong(limit_s)

    try:
        for packet in container.demux(stream):
            if packet.size == 0 and packet.pts is None:
                continue
            try:
                frames = packet.decode()
            except (av.FFmpegError, ValueError):
                errors += 1
                continue
            for frame in frames:
                frames_ok += 1
                take(resampler.resample(frame))
        try:
            for frame in stream.codec_context.decode(None):
                frames_ok += 1
                take(resampler.resample(frame))
        except (av.FFmpegError, ValueError):
            errors += 1
        take(resampler.resample(None))
    except TooLong:
        raise
    except (av.FFmpegError, ValueError, MemoryError) as exc:
        # The demuxer itself failed part-way: the file is damaged.
        if frames_ok == 0 and not recognised:
            raise NotAudio() from exc
        raise TruncatedAudio() from exc

    if total == 0:
        if errors:
            raise TruncatedAudio() if recognised else NotAudio()
        raise EmptyAudio()
    if errors > max(2, frames_ok // 10):
        raise TruncatedAudio() if recognised else NotAudio()

    decoded_s = total / SAMPLE_RATE
    if declared_s is not None and declared_s - decoded_s > max(
        TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE_SHARE * declared_s
    ):
        raise TruncatedAudio()

    audio = np.concatenate(chunks).astype(np.float32, copy=False)
    if not np.all(np.isfinite(audio)):
        audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
    np.clip(audio, -1.0, 1.0, out=audio)
    return audio
