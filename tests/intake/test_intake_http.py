"""Intake over HTTP: service tokens, consent first, sampling, daily cap, and every bad-input class.

Whatever is refused leaves nothing behind: no recording row, no blob, only a counter.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np
import pytest
from sqlalchemy import func, select

from earshot.deployment import Deployment
from earshot.intake.models import IntakeCounter, Recording
from earshot.intake.services import create_product
from earshot.privacy.services import set_consent
from tests.conftest import encode, espeak


@pytest.fixture
def token(deployment: Deployment) -> str:
    with deployment.db.session() as s:
        _, tok = create_product(s, "assistant", graders_per_snippet=1)
        set_consent(s, deployment, "cust-1", granted=True)
    return tok


@contextmanager
def configured(make_deployment, **settings):
    """A deployment with `settings` (sampling 100 % unless given), a product token, a consenting customer."""
    from fastapi.testclient import TestClient

    from earshot.web.app import create_app

    dep = make_deployment(**{"sample_rate": 1.0, **settings})
    with dep.db.session() as s:
        _, tok = create_product(s, "assistant")
        set_consent(s, dep, "cust-1", granted=True)
    with TestClient(create_app(dep), client=("127.0.0.1", 1)) as c:
        yield dep, c, tok


def post(client, token: str | None, audio: bytes, meta: dict | str | None = None, filename: str = "a.wav"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    meta = meta if meta is not None else {"customer_id": "cust-1", "locale": "en-US"}
    files = {
        "audio": (filename, audio, "application/octet-stream"),
        "metadata": (
            "metadata.json",
            meta if isinstance(meta, str) else json.dumps(meta),
            "application/json",
        ),
    }
    return client.post("/api/v1/recordings", headers=headers, files=files)


def nothing_stored(deployment: Deployment) -> None:
    with deployment.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Recording)) == 0
    blobs = [p for p in deployment.settings.blob_dir.rglob("*") if p.is_file()]
    assert blobs == []


def counters(deployment: Deployment) -> dict[str, int]:
    with deployment.db.session() as s:
        return {c.outcome: c.count for c in s.scalars(select(IntakeCounter))}


def test_requires_service_token(client, deployment, token) -> None:
    assert post(client, None, b"x").status_code == 401
    assert post(client, "est_wrong", b"x").status_code == 401
    assert post(client, token + "x", b"x").status_code == 401
    nothing_stored(deployment)


def test_no_consent_is_counted_never_stored(client, deployment, token) -> None:
    r = post(client, token, espeak("hello there"), {"customer_id": "stranger"})
    assert r.status_code == 202 and r.json()["status"] == "no_consent"
    nothing_stored(deployment)
    assert counters(deployment) == {"no_consent": 1}


def test_withdrawn_consent_stops_intake(client, deployment, token) -> None:
    with deployment.db.session() as s:
        set_consent(s, deployment, "cust-1", granted=False)
    r = post(client, token, espeak("hello there"))
    assert r.json()["status"] == "no_consent"
    nothing_stored(deployment)


def test_not_sampled_is_counted_never_stored(make_deployment) -> None:
    with configured(make_deployment, sample_rate=0.0) as (dep, c, tok):
        r = post(c, tok, b"not even audio")
    assert r.status_code == 202 and r.json()["status"] == "not_sampled"
    nothing_stored(dep)
    assert counters(dep) == {"not_sampled": 1}


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"", 400, "empty_audio"),
        (b"%PDF-1.4 this is a document, not audio" * 20, 400, "not_audio"),
        (bytes(range(256)) * 50, 400, "not_audio"),
    ],
)
def test_bad_input_gets_clear_4xx_and_leaves_nothing(
    client, deployment, token, payload, status, code
) -> None:
    r = post(client, token, payload)
    assert r.status_code == status, r.text
    assert r.json()["detail"]["code"] == code
    nothing_stored(deployment)


def test_truncated_audio(client, deployment, token) -> None:
    import io

    import soundfile as sf

    samples, rate = sf.read(io.BytesIO(espeak("this recording will be cut in half by a broken upload")))
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")  # a WAV with its real sizes
    wav = buf.getvalue()
    r = post(client, token, wav[: len(wav) // 2])
    assert r.status_code == 400 and r.json()["detail"]["code"] == "truncated_audio"
    nothing_stored(deployment)


def test_too_long(make_deployment) -> None:
    audio = encode(np.zeros(16000 * 5, dtype=np.float32), "flac")
    with configured(make_deployment, max_duration_s=2.0) as (dep, c, tok):
        r = post(c, tok, audio)
    assert r.status_code == 413 and r.json()["detail"]["code"] == "too_long"
    nothing_stored(dep)


def test_too_large(make_deployment) -> None:
    with configured(make_deployment, max_upload_bytes=10_000) as (dep, c, tok):
        r = post(c, tok, b"\0" * 200_000)
    assert r.status_code == 413
    nothing_stored(dep)


def test_unknown_codec(client, deployment, token) -> None:
    import io

    import av

    buf = io.BytesIO()  # a video-only file: a container without any audio stream
    with av.open(buf, "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=5)
        stream.width, stream.height = 16, 16
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    r = post(client, token, buf.getvalue(), filename="a.mkv")
    assert r.status_code == 415, r.text
    nothing_stored(deployment)


def test_bad_metadata(client, deployment, token) -> None:
    assert post(client, token, espeak("hi"), "{not json").status_code == 422
    assert post(client, token, espeak("hi"), {"locale": "en-US"}).status_code == 422
    nothing_stored(deployment)


def test_daily_cap(make_deployment) -> None:
    speech = espeak("please set an alarm for seven in the morning")
    with configured(make_deployment, daily_cap_per_customer=1) as (dep, c, tok):
        assert post(c, tok, speech).json()["status"] == "accepted"
        assert post(c, tok, speech).json()["status"] == "capped"
    assert counters(dep) == {"accepted": 1, "capped": 1}
