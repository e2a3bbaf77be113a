"""The retention sweeper deletes exactly what is due at a given time, and nothing else."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

from earshot.audit.models import AuditRecord
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.intake.models import Recording
from earshot.privacy.models import ErasedSnippet
from earshot.privacy.retention import run_retention, start_retention_scheduler
from earshot.review.models import Snippet
from tests.privacy import helpers as h

DAY = timedelta(days=1)


def _world(dep: Deployment, now):  # noqa: ANN001, ANN202
    """Recordings and snippets at chosen ages around the default limits (30 days after grading, 180 days)."""
    ids: dict[str, str] = {}
    blobs: dict[str, str] = {}
    with dep.db.session() as s:
        prod, _ = h.product(s)
        alice = h.reviewer(s, "alice@example.org")
        bob = h.reviewer(s, "bob@example.org")

        def snip(rec: Recording, name: str, pos: int):  # noqa: ANN202
            x = h.snippet(s, dep, rec, position=pos, created_at=rec.received_at, text=name)
            ids[name], blobs[name] = x.id, x.audio_blob_id
            return x

        old = h.recording(s, dep, prod, "c-old", received_at=now - 200 * DAY)
        h.grade(s, dep, snip(old, "old_graded", 0), alice, at=now - 190 * DAY)
        snip(old, "old_queued", 1)
        ids["rec_old"] = old.id

        edge = h.recording(s, dep, prod, "c-edge", received_at=now - 180 * DAY + timedelta(hours=1))
        h.grade(s, dep, snip(edge, "edge_graded_31d", 0), alice, at=now - 31 * DAY)
        ids["rec_edge"] = edge.id

        mid = h.recording(s, dep, prod, "c-mid", received_at=now - 100 * DAY)
        h.grade(s, dep, snip(mid, "graded_31d", 0), alice, at=now - 31 * DAY)
        h.grade(s, dep, snip(mid, "graded_29d", 1), alice, at=now - 29 * DAY)
        snip(mid, "queued", 2)
        two = snip(mid, "second_grade_10d", 3)
        two.graders_needed = 2
        h.grade(s, dep, two, alice, at=now - 40 * DAY, final=False)
        h.grade(s, dep, two, bob, at=now - 10 * DAY)

        done = h.recording(s, dep, prod, "c-raw", received_at=now - DAY, status="processed", raw=True)
        waiting = h.recording(s, dep, prod, "c-wait", received_at=now - DAY, status="pending", raw=True)
        ids["rec_done"], blobs["rec_done"] = done.id, done.raw_blob_id
        ids["rec_wait"], blobs["rec_wait"] = waiting.id, waiting.raw_blob_id
    return ids, blobs


def test_sweeper_deletes_exactly_what_is_due(deployment: Deployment) -> None:
    now = utcnow()
    ids, blobs = _world(deployment, now)
    report = run_retention(deployment, now=now)
    assert (
        report.snippets_deleted,
        report.recordings_deleted,
        report.audio_deleted,
        report.raw_audio_deleted,
    ) == (2, 1, 2, 1)

    with deployment.db.session() as s:
        rows = {x.id: x for x in s.scalars(select(Snippet))}
        # Maximum age: the 200-day-old recording and all its snippets are gone, with tombstones.
        assert ids["old_graded"] not in rows and ids["old_queued"] not in rows
        assert s.get(Recording, ids["rec_old"]) is None
        assert {(t.snippet_id, t.reason) for t in s.scalars(select(ErasedSnippet))} == {
            (ids["old_graded"], "retention"),
            (ids["old_queued"], "retention"),
        }
        # 30 days after grading: audio gone, the row and transcripts stay.
        for name in ("edge_graded_31d", "graded_31d"):
            assert rows[ids[name]].audio_blob_id is None
            assert not deployment.blobs.exists(blobs[name])
            text = deployment.vault.open_text(
                s, rows[ids[name]].customer_id, f"snippet:{ids[name]}:text", rows[ids[name]].transcript_enc
            )
            assert text == name
        # Not yet due: graded 29 days ago, still queued, or graded again 10 days ago.
        for name in ("graded_29d", "queued", "second_grade_10d"):
            assert rows[ids[name]].audio_blob_id == blobs[name] and deployment.blobs.exists(blobs[name])
        assert s.get(Recording, ids["rec_edge"]) is not None
        # Raw audio: gone once processed, kept while the pipeline still needs it.
        assert s.get(Recording, ids["rec_done"]).raw_blob_id is None and not deployment.blobs.exists(
            blobs["rec_done"]
        )
        assert s.get(Recording, ids["rec_wait"]).raw_blob_id == blobs["rec_wait"]
        assert deployment.blobs.exists(blobs["rec_wait"])

        # Every deletion is in the audit log.
        logged = [
            (r.action, r.target)
            for r in s.scalars(select(AuditRecord).where(AuditRecord.actor == "system:retention"))
        ]
        assert sorted(logged) == sorted(
            [
                ("retention.snippet_deleted", ids["old_graded"]),
                ("retention.snippet_deleted", ids["old_queued"]),
                ("retention.recording_deleted", ids["rec_old"]),
                ("retention.audio_deleted", ids["edge_graded_31d"]),
                ("retention.audio_deleted", ids["graded_31d"]),
                ("retention.raw_audio_deleted", ids["rec_done"]),
            ]
        )

    # A second sweep at the same time finds nothing more.
    again = run_retention(deployment, now=now)
    assert (
        again.snippets_deleted,
        again.recordings_deleted,
        again.audio_deleted,
        again.raw_audio_deleted,
    ) == (0, 0, 0, 0)

    # Two days later, the snippet graded 29 days ago is due; the edge recording reaches 180 days.
    later = run_retention(deployment, now=now + 2 * DAY)
    assert (later.audio_deleted, later.recordings_deleted, later.snippets_deleted) == (1, 1, 1)
    with deployment.db.session() as s:
        assert s.get(Snippet, ids["graded_29d"]).audio_blob_id is None
        assert s.get(Recording, ids["rec_edge"]) is None
        assert s.get(Snippet, ids["queued"]).audio_blob_id == blobs["queued"]


def test_periods_come_from_settings(make_deployment) -> None:  # noqa: ANN001
    dep = make_deployment(retention_after_consolidation_days=45, retention_max_age_days=365)
    now = utcnow()
    ids, _ = _world(dep, now)
    report = run_retention(dep, now=now)
    # Nothing is 365 days old; only the snippet graded 190 days ago is more than 45 days past grading.
    assert (report.snippets_deleted, report.recordings_deleted, report.audio_deleted) == (0, 0, 1)
    with dep.db.session() as s:
        assert s.get(Recording, ids["rec_old"]) is not None
        assert s.get(Snippet, ids["old_graded"]).audio_blob_id is None
        assert s.get(Snippet, ids["graded_31d"]).audio_blob_id is not None


def test_scheduler_runs_and_stops(deployment: Deployment) -> None:
    with deployment.db.session() as s:
        prod, _ = h.product(s)
        rec = h.recording(s, deployment, prod, "c1", status="no_speech", raw=True)
        rec_id = rec.id
    scheduler = start_retention_scheduler(deployment, interval_s=0.05)
    try:
        deadline = time.monotonic() + 10
        while scheduler.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        scheduler.stop()
    assert scheduler.runs >= 2 and not scheduler.is_alive()
    with deployment.db.session() as s:
        assert s.get(Recording, rec_id).raw_blob_id is None


def test_open_adjudication_keeps_the_audio(deployment: Deployment) -> None:
    from earshot.review import models as review_models

    consolidation = getattr(review_models, "Consolidation", None)
    if consolidation is None:
        import pytest

        pytest.skip("no consolidation table in this build")
    now = utcnow()
    with deployment.db.session() as s:
        prod, _ = h.product(s)
        alice = h.reviewer(s, "alice@example.org")
        rec = h.recording(s, deployment, prod, "c1", received_at=now - 60 * DAY)
        open_case = h.snippet(s, deployment, rec, position=0, created_at=rec.received_at)
        settled = h.snippet(s, deployment, rec, position=1, created_at=rec.received_at)
        for snip, status in ((open_case, "adjudication"), (settled, "auto")):
            h.grade(s, deployment, snip, alice, at=now - 40 * DAY)
            s.add(
                consolidation(
                    snippet_id=snip.id,
                    transcript_enc=b"x",
                    graders=1,
                    mean_pairwise_wer=0.0,
                    grade_agreement=1.0,
                    accuracy=4.0,
                    status=status,
                    created_at=now - 40 * DAY,
                )
            )
        ids = (open_case.id, settled.id)
    assert run_retention(deployment, now=now).audio_deleted == 1
    with deployment.db.session() as s:
        assert s.get(Snippet, ids[0]).audio_blob_id is not None
        assert s.get(Snippet, ids[1]).audio_blob_id is None
