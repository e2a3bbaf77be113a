"""Consent and withdrawal: opt-in recorded with time and text version; withdrawal stops intake at once
and deletes what is not yet graded."""

from __future__ import annotations

import random

from sqlalchemy import select

from earshot.deployment import Deployment
from earshot.intake.models import Recording
from earshot.intake.services import RecordingMeta, receive_recording
from earshot.privacy.models import ErasedSnippet
from earshot.privacy.services import consent_state, find_customer, set_consent
from earshot.review.models import Grade, Snippet
from tests.privacy import helpers as h

SILENCE_WAV = None


def _wav() -> bytes:
    import io

    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(
        buf, (np.random.default_rng(0).standard_normal(16000) * 0.05).astype("float32"), 16000, format="WAV"
    )
    return buf.getvalue()


def test_grant_and_withdraw_are_recorded_with_version_and_time(deployment: Deployment) -> None:
    with deployment.db.session() as s:
        set_consent(s, deployment, "cust-1", granted=True, text_version="2025-07", source="api")
        set_consent(s, deployment, "cust-1", granted=False, source="cli")
        state = consent_state(s, deployment, "cust-1")
    assert state.known and not state.consented
    assert state.text_version == "2025-07"  # the version last agreed to
    assert [(r.action, r.text_version, r.source) for r in state.history] == [
        ("grant", "2025-07", "api"),
        ("withdraw", deployment.settings.consent_text_version, "cli"),
    ]
    assert state.history[0].at <= state.history[1].at == state.changed_at


def test_unknown_customer_has_not_consented_and_is_not_created(deployment: Deployment) -> None:
    with deployment.db.session() as s:
        state = consent_state(s, deployment, "nobody")
        assert find_customer(s, deployment, "nobody") is None
    assert state.to_json() == {"consented": False, "text_version": None, "changed_at": None, "history": []}


def test_withdrawal_stops_intake_at_once(deployment: Deployment) -> None:
    wav = _wav()
    with deployment.db.session() as s:
        prod, _ = h.product(s)
        set_consent(s, deployment, "c1", granted=True)
        first = receive_recording(deployment, s, prod, RecordingMeta("c1"), wav, rng=random.Random(1))
        set_consent(s, deployment, "c1", granted=False)
        second = receive_recording(deployment, s, prod, RecordingMeta("c1"), wav, rng=random.Random(1))
        assert first.status == "accepted" and second.status == "no_consent"
        pending = s.get(Recording, first.recording_id)
        assert pending.status == "withdrawn" and pending.raw_blob_id is None


def test_withdrawal_deletes_pending_snippets_and_keeps_graded(deployment: Deployment) -> None:
    with deployment.db.session() as s:
        prod, _ = h.product(s)
        rec = h.recording(s, deployment, prod, "c1")
        other = h.recording(s, deployment, prod, "c2")
        queued = h.snippet(s, deployment, rec, position=0)
        partly = h.snippet(s, deployment, rec, position=1)
        partly.graders_needed = 2
        done = h.snippet(s, deployment, rec, position=2)
        others = h.snippet(s, deployment, other)
        alice = h.reviewer(s, "a@example.org")
        h.grade(s, deployment, partly, alice, final=False)
        h.grade(s, deployment, done, alice)
        blobs = {x.id: x.audio_blob_id for x in (queued, partly, done, others)}
        ids = dict(queued=queued.id, partly=partly.id, done=done.id, others=others.id)
    with deployment.db.session() as s:
        set_consent(s, deployment, "c1", granted=False, source="api")
    with deployment.db.session() as s:
        left = set(s.scalars(select(Snippet.id)))
        assert left == {ids["done"], ids["others"]}
        assert not deployment.blobs.exists(blobs[ids["queued"]])
        assert not deployment.blobs.exists(blobs[ids["partly"]])
        assert deployment.blobs.exists(blobs[ids["done"]])
        # The partly graded snippet's grade may already be in an exported dataset: it leaves a tombstone.
        assert {(t.snippet_id, t.reason) for t in s.scalars(select(ErasedSnippet))} == {
            (ids["partly"], "withdrawal")
        }
        assert s.scalar(select(Grade).where(Grade.snippet_id == ids["partly"])) is None


def test_regrant_after_withdrawal(deployment: Deployment) -> None:
    with deployment.db.session() as s:
        set_consent(s, deployment, "c1", granted=True)
        set_consent(s, deployment, "c1", granted=False)
        set_consent(s, deployment, "c1", granted=True, text_version="2026-02")
        state = consent_state(s, deployment, "c1")
    assert state.consented and state.text_version == "2026-02" and len(state.history) == 3


def test_consent_api(api, deployment: Deployment) -> None:  # noqa: ANN001
    with deployment.db.session() as s:
        _, token = h.product(s)
    auth = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/customers/c9/consent").status_code == 401
    assert (
        api.put(
            "/api/v1/customers/c9/consent", json={"granted": True}, headers={"Authorization": "Bearer x"}
        ).status_code
        == 401
    )
    assert api.get("/api/v1/customers/c9/consent", headers=auth).json()["history"] == []
    r = api.put("/api/v1/customers/c9/consent", json={"granted": True, "text_version": "v7"}, headers=auth)
    assert r.status_code == 200 and r.json()["consented"] and r.json()["text_version"] == "v7"
    r = api.put("/api/v1/customers/c9/consent", json={"granted": False}, headers=auth)
    assert r.status_code == 200 and not r.json()["consented"]
    got = api.get("/api/v1/customers/c9/consent", headers=auth).json()
    assert [e["action"] for e in got["history"]] == ["grant", "withdraw"]
    assert all(e["source"] == "api" and e["at"] for e in got["history"])
