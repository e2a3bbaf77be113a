"""`earshot deid FILE --out DIR` end to end through the Typer app."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from earshot.cli.main import app
from earshot.pipeline.types import SAMPLE_RATE
from earshot.pipeline.wavio import wav_chunks
from tests.pipeline.audio_helpers import encode

pytestmark = pytest.mark.slow


@pytest.fixture
def recording(say, tmp_path: Path) -> tuple[Path, float]:  # noqa: ANN001
    speech = np.concatenate(
        [
            np.zeros(SAMPLE_RATE, np.float32),
            say("Hello, my name is John Smith, please call me tomorrow morning."),
            np.zeros(int(1.5 * SAMPLE_RATE), np.float32),
            say("Can you turn the music down a little bit?", "en-us+f2"),
            np.zeros(SAMPLE_RATE // 2, np.float32),
        ]
    )
    path = tmp_path / "call.mp3"
    path.write_bytes(encode(speech, "mp3"))
    return path, len(speech) / SAMPLE_RATE


def _run(*args: str):  # noqa: ANN202
    return CliRunner().invoke(app, list(args))


def test_deid_writes_snippets_and_index(pipeline, recording, tmp_path: Path) -> None:  # noqa: ANN001
    path, duration = recording
    out = tmp_path / "out"
    result = _run("deid", str(path), "--out", str(out), "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 0, result.output
    index = json.loads((out / "snippets.json").read_text())
    assert isinstance(index, list) and len(index) == 2
    assert sorted(p.name for p in out.iterdir()) == sorted([*(e["file"] for e in index), "snippets.json"])
    previous_end = 0.0
    for entry in index:
        assert set(entry) == {"file", "start_s", "end_s", "transcript", "pii"}
        assert previous_end <= entry["start_s"] < entry["end_s"] <= duration + 0.01
        assert entry["end_s"] - entry["start_s"] <= 10.0
        previous_end = entry["end_s"]
        data = (out / entry["file"]).read_bytes()
        assert wav_chunks(data) == ["fmt ", "data"]  # no metadata of any kind
        with wave.open(io.BytesIO(data)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SAMPLE_RATE)
            assert abs(w.getnframes() / SAMPLE_RATE - (entry["end_s"] - entry["start_s"])) < 0.002
        for p in entry["pii"]:
            assert set(p) == {"type", "start_s", "end_s"}
            assert entry["start_s"] <= p["start_s"] <= p["end_s"] <= entry["end_s"]
    first, second = index
    assert first["start_s"] > 0.5  # times are relative to the input, after its leading silence
    assert "John" not in first["transcript"] and "Smith" not in first["transcript"]
    assert "[NAME]" in first["transcript"]
    assert any(p["type"] == "NAME" for p in first["pii"])
    assert "music" in second["transcript"].lower()


@pytest.mark.parametrize(
    "content",
    [b"", b"definitely not audio " * 100, "cut"],
    ids=["empty", "not-audio", "truncated"],
)
def test_bad_input_is_one_line_exit_2_nothing_written(
    content: bytes | str, recording, tmp_path: Path
) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.wav"
    if content == "cut":
        data = encode(np.zeros(SAMPLE_RATE * 3, np.float32) + 0.1, "wav")
        content = data[: len(data) // 2]
    bad.write_bytes(content)
    out = tmp_path / "out"
    result = _run("deid", str(bad), "--out", str(out), "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: bad.wav:")
    assert not out.exists()


def test_missing_file_is_exit_2(tmp_path: Path) -> None:
    result = _run(
        "deid", str(tmp_path / "nope.wav"), "--out", str(tmp_path / "o"), "--data-dir", str(tmp_path)
    )
    assert result.exit_code == 2
    assert not (tmp_path / "o").exists()


def test_a_telephone_call_comes_out_without_hiss_over_the_band_it_never_had(
    pipeline, say, tmp_path: Path  # noqa: ANN001
) -> None:
    """An 8 kHz call decodes to 16 kHz with nothing above 4 kHz; the snippet a reviewer hears
    must not have that empty band lifted to speech level (it was, by up to 60 dB, as hiss)."""
    from scipy.signal import resample_poly

    from earshot.pipeline.voice_dsp import stft

    words = say("Can you turn the music down a little bit?")
    speech = np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), words])
    narrow = resample_poly(speech.astype(np.float64), 1, 2)
    path = tmp_path / "call-8k.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE // 2)
        w.writeframes((np.clip(narrow, -1, 1) * 32767).astype("<i2").tobytes())
    out = tmp_path / "out"
    result = _run("deid", str(path), "--out", str(out), "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 0, result.output
    index = json.loads((out / "snippets.json").read_text())
    assert index and "music" in " ".join(e["transcript"] for e in index).lower()
    hz = np.arange(129) * SAMPLE_RATE / 256
    for entry in index:
        with wave.open(str(out / entry["file"])) as w:
            y = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768
        power = np.abs(stft(y)) ** 2
        loud = 10 * np.log10(power.sum(axis=1) + 1e-20)
        ltas = 10 * np.log10(power[loud > loud.max() - 35].mean(axis=0) + 1e-20)
        assert ltas[hz > 5500].mean() < ltas[(hz > 300) & (hz < 3400)].mean() - 30
