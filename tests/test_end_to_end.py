"""The whole path: speech in over HTTP -> snippets -> an MFA reviewer grades -> export.

Runs on SQLite and (in CI) PostgreSQL. Also checks that nothing under the data dir holds audio
or transcript text in the clear.
"""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import soundfile as sf
from sqlalchemy import select

from earshot.access.facilities import create_facility
from earshot.access.vetting import KINDS, record_vetting
from earshot.intake.services import create_product
from earshot.review.policy import MAX_PLAYBACK_SPEED
from earshot.review.services import export_jsonl
from tests.access.helpers import enrol_and_login
from tests.conftest import espeak

SENTENCE = "please remind me to water the tomato plants in the garden this evening"


def vet(deployment, email: str) -> None:
    from earshot.access.models import User

    today = datetime.now(UTC).date()
    with deployment.db.session() as s:
        user = s.scalar(select(User).where(User.email == email))
        for kind in KINDS:
            record_vetting(
                s,
                user.id,
                kind,
                completed_on=today,
                expires_on=today + timedelta(days=90),
                recorded_by="test",
            )


@pytest.mark.slow
def test_speech_in_graded_transcript_out(client, deployment) -> None:
    with deployment.db.session() as s:
        _, token = create_product(s, "assistant", graders_per_snippet=1)
        create_facility(
            s,
            "Test facility",
            deployment.settings.allowed_countries[0],
            ["127.0.0.0/8"],
            settings=deployment.settings,
        )
    auth = {"Authorization": f"Bearer {token}"}

    r = client.put("/api/v1/customers/cust-42/consent", json={"granted": True}, headers=auth)
    assert r.status_code == 200 and r.json()["consented"] is True

    meta = {"customer_id": "cust-42", "locale": "en-US", "captured_at": "2026-11-01T10:00:00+00:00"}
    r = client.post(
        "/api/v1/recordings",
        headers=auth,
        files={
            "audio": ("call.wav", espeak(SENTENCE), "audio/wav"),
            "metadata": ("m.json", json.dumps(meta), "application/json"),
        },
    )
    assert r.status_code == 202 and r.json()["status"] == "accepted", r.text

    # Nothing readable at rest: no WAV header, no transcript words, anywhere in the data dir.
    for path in deployment.settings.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"WAVEfmt" not in data, path
            for word in (b"tomato", b"garden", b"remind"):
                assert word not in data.lower(), path

    # No session: refused.
    assert client.get("/api/v1/tasks/next").status_code == 401

    who = enrol_and_login(client, deployment, "rev1@example.org", "reviewer")
    vet(deployment, "rev1@example.org")
    r = client.get("/api/v1/tasks/next")
    assert r.status_code == 200, r.text
    task = r.json()
    assert "tomato" in task["transcript"].lower()

    csrf = {"X-CSRF-Token": who["csrf"]}
    url = client.post(f"/api/v1/tasks/{task['assignment_id']}/media", headers=csrf).json()["url"]
    audio = client.get(url)
    assert audio.status_code == 200
    assert audio.headers["cache-control"].startswith("no-store")
    assert client.get(url).status_code == 404  # single-use
    samples, rate = sf.read(io.BytesIO(audio.content))
    assert rate == 16000 and 1.0 < len(samples) / rate <= 10.0

    corrected = "please remind me to water the tomato plants in the garden this evening"
    grade = {"transcript": corrected, "accuracy": 4, "intent_correct": True}
    # Not before the snippet has been played to the end.
    r = client.post(f"/api/v1/tasks/{task['assignment_id']}/grade", json=grade, headers=csrf)
    assert r.status_code == 409, r.text
    time.sleep(task["duration_s"] / MAX_PLAYBACK_SPEED + 0.2)
    assert client.post(f"/api/v1/tasks/{task['assignment_id']}/played", headers=csrf).status_code == 204
    r = client.post(f"/api/v1/tasks/{task['assignment_id']}/grade", json=grade, headers=csrf)
    assert r.status_code == 201, r.text
    # The lease is closed: no more audio for this task.
    assert client.post(f"/api/v1/tasks/{task['assignment_id']}/media", headers=csrf).status_code == 404

    out = io.StringIO()
    with deployment.db.session() as s:
        assert export_jsonl(s, deployment, out) == 1
    row = json.loads(out.getvalue())
    assert row["grades"][0]["transcript"] == corrected and row["grades"][0]["accuracy"] == 4
    assert "cust-42" not in out.getvalue()


@pytest.mark.slow
def test_other_reviewer_cannot_reach_assigned_audio(client, deployment) -> None:
    from fastapi.testclient import TestClient

    from earshot.intake.services import RecordingMeta, receive_recording
    from earshot.privacy.services import set_consent

    with deployment.db.session() as s:
        product, _ = create_product(s, "assistant", graders_per_snippet=1)
        create_facility(
            s,
            "Test facility",
            deployment.settings.allowed_countries[0],
            ["127.0.0.0/8"],
            settings=deployment.settings,
        )
        set_consent(s, deployment, "c1", granted=True)
        result = receive_recording(deployment, s, product, RecordingMeta("c1"), espeak(SENTENCE))
    deployment.runner.submit("process_recording", recording_id=result.recording_id)

    who = enrol_and_login(client, deployment, "rev1@example.org", "reviewer")
    csrf = {"X-CSRF-Token": who["csrf"]}
    vet(deployment, "rev1@example.org")
    task = client.get("/api/v1/tasks/next").json()

    other = TestClient(client.app, client=("127.0.0.1", 50001), base_url="http://127.0.0.1")
    other_who = enrol_and_login(other, deployment, "rev2@example.org", "reviewer")
    vet(deployment, "rev2@example.org")
    other_csrf = {"X-CSRF-Token": other_who["csrf"]}
    assert other.post(f"/api/v1/tasks/{task['assignment_id']}/media", headers=other_csrf).status_code == 404
    url = client.post(f"/api/v1/tasks/{task['assignment_id']}/media", headers=csrf).json()["url"]
    assert other.get(url).status_code == 404  # bound to the first reviewer's session
    r = other.post(
        f"/api/v1/tasks/{task['assignment_id']}/grade",
        json={"transcript": "x", "accuracy": 1},
        headers=other_csrf,
    )
    assert r.status_code == 404
    # One snippet, one grader: nothing left for the second reviewer.
    assert other.get("/api/v1/tasks/next").status_code == 204
