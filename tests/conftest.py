"""Shared fixtures: deployments on SQLite (always) and PostgreSQL (when EARSHOT_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import io
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from earshot.config import load_settings
from earshot.deployment import Deployment

PG_ENV = "EARSHOT_TEST_POSTGRES_URL"


def _postgres_schema_url(base: str) -> Iterator[str]:
    """A fresh schema on the test server for one test; dropped afterwards."""
    import sqlalchemy as sa

    schema = "t_" + secrets.token_hex(6)
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(autouse=True)
def _close_deployments_opened_in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every deployment a test opened indirectly (CLI commands run in-process by CliRunner
    open their own and rely on the process exiting): their pooled PostgreSQL connections would
    otherwise pile up across the run until the server refuses new clients."""
    opened: list[Deployment] = []
    original = Deployment.open.__func__  # type: ignore[attr-defined]

    def tracking_open(cls: type[Deployment], *args: object, **kwargs: object) -> Deployment:
        dep = original(cls, *args, **kwargs)
        opened.append(dep)
        return dep

    monkeypatch.setattr(Deployment, "open", classmethod(tracking_open))
    yield
    for dep in opened:
        dep.close()  # idempotent for the ones make_deployment closes too


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None means the embedded default (SQLite in the data dir)."""
    if request.param == "sqlite":
        yield None
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (set by .ci/run)")
    yield from _postgres_schema_url(base)


@pytest.fixture
def make_deployment(tmp_path: Path, database_url: str | None) -> Iterator:
    """Factory for deployments in tmp data dirs, on the parametrised database."""
    opened: list[Deployment] = []

    def factory(**overrides: object) -> Deployment:
        data_dir = tmp_path / f"data{len(opened)}"
        if database_url:
            overrides.setdefault("database_url", database_url)
        overrides.setdefault("background_jobs", False)  # tests that want them turn them on
        dep = Deployment.open(load_settings(data_dir, **overrides))
        opened.append(dep)
        return dep

    yield factory
    for dep in opened:
        dep.close()


@pytest.fixture
def deployment(make_deployment) -> Deployment:  # noqa: ANN001
    return make_deployment(sample_rate=1.0)


@pytest.fixture
def client(deployment: Deployment):  # noqa: ANN201
    from fastapi.testclient import TestClient

    from earshot.web.app import create_app

    with TestClient(create_app(deployment), client=("127.0.0.1", 50000), base_url="http://127.0.0.1") as c:
        yield c


def espeak(text: str, voice: str = "en-us", speed: int = 160) -> bytes:
    """WAV bytes of synthetic speech (espeak-ng), generated in memory."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make test installs it)")
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], check=True, capture_output=True
    )
    return out.stdout


def encode(audio: np.ndarray, fmt: str, sample_rate: int = 16000) -> bytes:
    """Encode float audio to a container format in memory (PyAV)."""
    import av

    codec = {"wav": "pcm_s16le", "flac": "flac", "mp3": "libmp3lame", "ogg": "libopus", "m4a": "aac"}[fmt]
    container_fmt = {"m4a": "mp4", "ogg": "ogg"}.get(fmt, fmt)
    rate = 48000 if fmt == "ogg" else sample_rate
    buf = io.BytesIO()
    with av.open(buf, "w", format=container_fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        if rate != sample_rate:
            from scipy.signal import resample_poly

            audio = resample_poly(audio, rate // 1000, sample_rate // 1000).astype(np.float32)
        samples = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
