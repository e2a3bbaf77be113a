"""Retention (GDPR Art. 5(1)(e), storage limitation): nothing is kept longer than its purpose needs.

- Snippet audio is deleted `retention_after_consolidation_days` (default 30) after the snippet was
  graded and consolidated (its last grade, or its adjudication if it needed one; never while an
  adjudication is open): the transcripts are the result, the audio was only needed to produce them.
- Raw recordings are only needed until the pipeline has cut them: any raw audio left on a
  recording that is no longer pending is deleted.
- Everything of a recording - its snippets, transcripts, grades - is deleted when the recording is
  `retention_max_age_days` (default 180) old, leaving a `retention` tombstone per snippet.
- Erasures whose purge was interrupted are completed.

Every deletion is one audit record. `run_retention` is what `earshot retention run` calls and what
`start_retention_scheduler` runs periodically in the server and the worker.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session

from earshot.audit import services as audit
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.intake.models import Recording
from earshot.privacy.cleanup import (
    BATCH,
    begin_write,
    delete_blobs,
    drop_recordings,
    drop_snippets,
    for_update,
)
from earshot.privacy.erasure import purge_pending_erasures
from earshot.privacy.services import CONSOLIDATED
from earshot.review import models as review_models
from earshot.review.models import Grade, Snippet

log = logging.getLogger("earshot.retention")

ACTOR = "system:retention"


@dataclass
class RetentionReport:
    """What one sweep deleted."""

    as_of: datetime
    audio_deleted: int = 0  # snippet audio, after grading
    raw_audio_deleted: int = 0  # raw recordings left after processing
    snippets_deleted: int = 0  # maximum age
    recordings_deleted: int = 0  # maximum age
    erasures_purged: int = 0

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = asdict(self)
        out["as_of"] = self.as_of.isoformat()
        return out


def _events(action: str, targets: list[str], **details: object) -> list[audit.Event]:
    return [audit.Event(actor=ACTOR, action=action, target=t, details=dict(details)) for t in targets]


def _sweep_snippet_audio(deployment: Deployment, cutoff: datetime) -> int:
    """Delete the audio of snippets graded at or before `cutoff`; the rows and transcripts stay."""
    newer_grade = exists().where(Grade.snippet_id == Snippet.id, Grade.created_at > cutoff)
    any_grade = exists().where(Grade.snippet_id == Snippet.id)
    conditions = [Snippet.status.in_(CONSOLIDATED), Snippet.audio_blob_id.is_not(None),
                  Snippet.created_at <= cutoff, any_grade, ~newer_grade]
    consolidation = getattr(review_models, "Consolidation", None)
    if consolidation is not None:  # a snippet still being adjudicated keeps its audio
        conditions.append(~exists().where(
            consolidation.snippet_id == Snippet.id,
            or_(consolidation.status == "adjudication",
                func.coalesce(consolidation.adjudicated_at, consolidation.created_at) > cutoff)))
    total = 0
    while True:
        with deployment.db.session() as session:
            begin_write(session)
            stmt = select(Snippet.id, Snippet.audio_blob_id).where(*conditions).limit(BATCH)
            rows = session.execute(for_update(stmt, session, Snippet)).all()
            if not rows:
                return total
            ids = [sid for sid, _ in rows]
            session.execute(
                update(Snippet)
                .where(Snippet.id.in_(ids))
                .values(audio_blob_id=None)
                .execution_options(synchronize_session=False)
            )
            audit.record_many(session, _events("retention.audio_deleted", ids, rule="after_grading"))
            session.flush()
            delete_blobs(deployment, [blob for _, blob in rows])
            total += len(rows)


def _sweep_raw_audio(deployment: Deployment) -> int:
    """Delete raw recording audio that is no longer needed (the recording is not pending)."""
    total = 0
    while True:
        with deployment.db.session() as session:
            begin_write(session)
            stmt = (
                select(Recording.id, Recording.raw_blob_id)
                .where(Recording.status != "pending", Recording.raw_blob_id.is_not(None))
                .limit(BATCH)
            )
            rows = session.execute(for_update(stmt, session, Recording)).all()
            if not rows:
                return total
            ids = [rid for rid, _ in rows]
            session.execute(
                update(Recording)
                .where(Recording.id.in_(ids))
                .values(raw_blob_id=None)
                .execution_options(synchronize_session=False)
            )
            audit.record_many(session, _events("retention.raw_audio_deleted", ids, rule="processed"))
            session.flush()
            delete_blobs(deployment, [blob for _, blob in rows])
            total += len(rows)


def _sweep_max_age(deployment: Deployment, cutoff: datetime) -> tuple[int, int]:
    """Delete recordings received at or before `cutoff` with everything derived from them."""
    snippets_total = recordings_total = 0
    while True:
        with deployment.db.session() as session:
            begin_write(session)
            stmt = (
                select(Recording.id, Recording.raw_blob_id)
                .where(Recording.received_at <= cutoff)
                .limit(BATCH)
            )
            recordings = session.execute(for_update(stmt, session, Recording)).all()
            if not recordings:
                return snippets_total, recordings_total
            rec_ids = [rid for rid, _ in recordings]
            snippets = _snippets_of(session, rec_ids)
            drop_snippets(session, deployment, snippets, reason="retention")
            drop_recordings(session, deployment, [tuple(r) for r in recordings])
            audit.record_many(
                session,
                [
                    *_events("retention.snippet_deleted", [sid for sid, _ in snippets], rule="max_age"),
                    *_events("retention.recording_deleted", rec_ids, rule="max_age"),
                ],
            )
            snippets_total += len(snippets)
            recordings_total += len(recordings)


def _snippets_of(session: Session, recording_ids: list[str]) -> list[tuple[str, str | None]]:
    rows = session.execute(
        select(Snippet.id, Snippet.audio_blob_id).where(Snippet.recording_id.in_(recording_ids))
    )
    return [(sid, blob) for sid, blob in rows]


def run_retention(deployment: Deployment, now: datetime | None = None) -> RetentionReport:
    """One sweep: delete exactly what is due at `now` (default: the current time)."""
    now = now or utcnow()
    settings = deployment.settings
    report = RetentionReport(as_of=now)
    report.erasures_purged = purge_pending_erasures(deployment)
    report.snippets_deleted, report.recordings_deleted = _sweep_max_age(
        deployment, now - timedelta(days=settings.retention_max_age_days)
    )
    report.audio_deleted = _sweep_snippet_audio(
        deployment, now - timedelta(days=settings.retention_after_consolidation_days)
    )
    report.raw_audio_deleted = _sweep_raw_audio(deployment)
    return report


class RetentionScheduler(threading.Thread):
    """Runs `run_retention` now and then every `interval_s` seconds until `stop()`."""

    def __init__(self, deployment: Deployment, interval_s: float) -> None:
        super().__init__(name="earshot-retention", daemon=True)
        self.deployment = deployment
        self.interval_s = interval_s
        self._stop_event = threading.Event()
        self.runs = 0
        self.last_report: RetentionReport | None = None

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.last_report = run_retention(self.deployment)
            except Exception as exc:  # keep sweeping next time; never log content
                log.error("retention sweep failed: %s", type(exc).__name__)
            self.runs += 1
            self._stop_event.wait(self.interval_s)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the thread to finish (after the sweep in progress) and wait for it."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)


def start_retention_scheduler(deployment: Deployment, interval_s: float | None = None) -> RetentionScheduler:
    """Start the periodic sweeper (default interval: `settings.retention_interval_s`); call `.stop()`."""
    scheduler = RetentionScheduler(deployment, interval_s or deployment.settings.retention_interval_s)
    scheduler.start()
    return scheduler
