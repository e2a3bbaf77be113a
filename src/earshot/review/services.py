"""Snippets in the review queue: storing them, leasing them to reviewers, grades and export.

Assignment is the server's choice alone (threat model: a reviewer must not steer towards a
recording or customer): random order, never two snippets of one recording to one reviewer,
never the same customer within a window, leases that expire.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from earshot.audit import services as audit
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.intake.models import Recording
from earshot.pipeline.types import DeidSnippet
from earshot.pipeline.wavio import encode_wav
from earshot.review.models import Assignment, Grade, Snippet

LEASE = timedelta(minutes=10)
CUSTOMER_WINDOW = timedelta(days=30)
MAX_TRANSCRIPT_CHARS = 2000


class NotFound(Exception):
    """Nothing this reviewer may see under that id (also used for other reviewers' work)."""


class InvalidGrade(ValueError):
    """The submitted grade is malformed."""


@dataclass(frozen=True)
class TaskView:
    """What a reviewer is shown: the assignment id and the masked machine transcript, nothing else."""

    assignment_id: str
    transcript: str
    duration_s: float
    lease_expires_at: datetime


# -- storing ------------------------------------------------------------------------------------
def add_snippet(
    session: Session,
    deployment: Deployment,
    recording: Recording,
    snippet: DeidSnippet,
    *,
    position: int,
    graders_needed: int,
) -> Snippet:
    """Encrypt and queue one de-identified snippet."""
    row = Snippet(
        recording_id=recording.id,
        customer_id=recording.customer_id,
        product_id=recording.product_id,
        position=position,
        duration_s=round(snippet.end_s - snippet.start_s, 3),
        transcript_enc=b"",
        pii_types=",".join(sorted({p.type for p in snippet.pii})),
        graders_needed=max(1, graders_needed),
        rand=random.random(),
    )
    session.add(row)
    session.flush()
    vault = deployment.vault
    row.audio_blob_id = vault.put_blob(session, recording.customer_id, encode_wav(snippet.audio))
    row.transcript_enc = vault.seal_text(session, recording.customer_id, f"snippet:{row.id}:text", snippet.transcript)
    session.flush()
    return row


def remove_snippet(session: Session, deployment: Deployment, snippet: Snippet) -> None:
    """Delete a snippet, its audio blob, and (by cascade) its assignments and grades."""
    if snippet.audio_blob_id:
        deployment.vault.delete_blob(snippet.audio_blob_id)
    session.delete(snippet)
    session.flush()


def delete_pending_snippets(session: Session, deployment: Deployment, customer_id: str) -> int:
    """Drop a customer's not-yet-graded snippets and unprocessed recordings (consent withdrawn)."""
    removed = 0
    for snippet in session.scalars(
        select(Snippet).where(Snippet.customer_id == customer_id, Snippet.grades_done == 0)
    ):
        remove_snippet(session, deployment, snippet)
        removed += 1
    for recording in session.scalars(
        select(Recording).where(Recording.customer_id == customer_id, Recording.status == "pending")
    ):
        if recording.raw_blob_id:
            deployment.vault.delete_blob(recording.raw_blob_id)
        recording.raw_blob_id = None
        recording.status = "withdrawn"
    session.flush()
    return removed


# -- leasing ------------------------------------------------------------------------------------
def expire_leases(session: Session, now: datetime | None = None) -> int:
    """Return expired leases' snippets to the pool."""
    now = now or utcnow()
    expired = list(
        session.scalars(
            select(Assignment).where(Assignment.status == "active", Assignment.lease_expires_at <= now)
        )
    )
    for assignment in expired:
        assignment.status = "expired"
        session.execute(
            update(Snippet)
            .where(Snippet.id == assignment.snippet_id, Snippet.in_flight > 0)
            .values(in_flight=Snippet.in_flight - 1)
        )
    session.flush()
    return len(expired)


def _active_assignment(session: Session, reviewer_id: str, now: datetime) -> Assignment | None:
    return session.scalar(
        select(Assignment).where(
            Assignment.reviewer_id == reviewer_id,
            Assignment.status == "active",
            Assignment.lease_expires_at > now,
        )
    )


def next_assignment(
    session: Session, deployment: Deployment, reviewer_id: str, *, ip: str | None = None
) -> Assignment | None:
    """The reviewer's current lease, or a new one on a random eligible snippet (None if none)."""
    now = utcnow()
    current = _active_assignment(session, reviewer_id, now)
    if current is not None:
        return current
    expire_leases(session, now)
    seen_recordings = select(Assignment.recording_id).where(Assignment.reviewer_id == reviewer_id)
    recent_customers = select(Assignment.customer_id).where(
        Assignment.reviewer_id == reviewer_id, Assignment.assigned_at > now - CUSTOMER_WINDOW
    )
    eligible = and_(
        Snippet.status == "queued",
        Snippet.grades_done + Snippet.in_flight < Snippet.graders_needed,
        Snippet.recording_id.not_in(seen_recordings),
        Snippet.customer_id.not_in(recent_customers),
    )
    start = random.random()
    snippet = None
    for window in (Snippet.rand >= start, Snippet.rand < start):
        stmt = select(Snippet).where(eligible, window).order_by(Snippet.rand).limit(1)
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        snippet = session.scalar(stmt)
        if snippet is not None:
            break
    if snippet is None:
        return None
    snippet.in_flight += 1
    assignment = Assignment(
        snippet_id=snippet.id,
        reviewer_id=reviewer_id,
        recording_id=snippet.recording_id,
        customer_id=snippet.customer_id,
        lease_expires_at=now + LEASE,
    )
    session.add(assignment)
    session.flush()
    audit.record(session, actor=f"user:{reviewer_id}", action="task.assigned", target=snippet.id, ip=ip,
                 details={"assignment": assignment.id})
    return assignment


def _owned_active(session: Session, reviewer_id: str, assignment_id: str) -> Assignment:
    assignment = session.get(Assignment, assignment_id)
    if (
        assignment is None
        or assignment.reviewer_id != reviewer_id
        or assignment.status != "active"
        or assignment.lease_expires_at <= utcnow()
    ):
        raise NotFound("no such task")
    return assignment


def task_view(session: Session, deployment: Deployment, reviewer_id: str, assignment_id: str) -> TaskView:
    assignment = _owned_active(session, reviewer_id, assignment_id)
    snippet = session.get(Snippet, assignment.snippet_id)
    if snippet is None:
        raise NotFound("no such task")
    text = deployment.vault.open_text(session, snippet.customer_id, f"snippet:{snippet.id}:text", snippet.transcript_enc)
    return TaskView(assignment.id, text, snippet.duration_s, assignment.lease_expires_at)


def task_audio(
    session: Session, deployment: Deployment, reviewer_id: str, assignment_id: str, *, ip: str | None = None
) -> bytes:
    """Decrypt the snippet audio for the reviewer holding the lease; recorded in the audit log."""
    assignment = _owned_active(session, reviewer_id, assignment_id)
    snippet = session.get(Snippet, assignment.snippet_id)
    if snippet is None or snippet.audio_blob_id is None:
        raise NotFound("no such task")
    audio = deployment.vault.get_blob(session, snippet.customer_id, snippet.audio_blob_id)
    audit.record(session, actor=f"user:{reviewer_id}", action="audio.delivered", target=snippet.id, ip=ip,
                 details={"assignment": assignment.id, "duration_s": snippet.duration_s})
    return audio


def submit_grade(
    session: Session,
    deployment: Deployment,
    reviewer_id: str,
    assignment_id: str,
    *,
    transcript: str,
    accuracy: int,
    ip: str | None = None,
) -> Grade:
    """Store the reviewer's corrected transcript (encrypted) and grade; close the lease."""
    if not 1 <= int(accuracy) <= 5:
        raise InvalidGrade("accuracy must be between 1 and 5")
    transcript = transcript.strip()
    if len(transcript) > MAX_TRANSCRIPT_CHARS:
        raise InvalidGrade(f"transcript longer than {MAX_TRANSCRIPT_CHARS} characters")
    assignment = _owned_active(session, reviewer_id, assignment_id)
    snippet = session.get(Snippet, assignment.snippet_id)
    if snippet is None:
        raise NotFound("no such task")
    grade = Grade(snippet_id=snippet.id, assignment_id=assignment.id, reviewer_id=reviewer_id,
                  accuracy=int(accuracy), transcript_enc=b"")
    session.add(grade)
    session.flush()
    grade.transcript_enc = deployment.vault.seal_text(session, snippet.customer_id, f"grade:{grade.id}:text", transcript)
    assignment.status = "completed"
    assignment.completed_at = utcnow()
    snippet.grades_done += 1
    snippet.in_flight = max(0, snippet.in_flight - 1)
    if snippet.grades_done >= snippet.graders_needed:
        snippet.status = "graded"
    audit.record(session, actor=f"user:{reviewer_id}", action="task.graded", target=snippet.id, ip=ip,
                 details={"assignment": assignment.id, "accuracy": int(accuracy)})
    session.flush()
    return grade


# -- export -------------------------------------------------------------------------------------
def export_jsonl(session: Session, deployment: Deployment, out: IO[str], *, actor: str = "cli:admin") -> int:
    """Write every graded snippet as one JSON line: pseudonymous ids, transcripts, grades; no customer ids."""
    vault = deployment.vault
    count = 0
    for snippet in session.scalars(select(Snippet).where(Snippet.grades_done > 0).order_by(Snippet.created_at)):
        grades = list(session.scalars(select(Grade).where(Grade.snippet_id == snippet.id).order_by(Grade.created_at)))
        row = {
            "snippet_id": snippet.id,
            "duration_s": snippet.duration_s,
            "status": snippet.status,
            "machine_transcript": vault.open_text(session, snippet.customer_id, f"snippet:{snippet.id}:text",
                                                  snippet.transcript_enc),
            "grades": [
                {
                    "grade_id": g.id,
                    "accuracy": g.accuracy,
                    "transcript": vault.open_text(session, snippet.customer_id, f"grade:{g.id}:text", g.transcript_enc),
                }
                for g in grades
            ],
        }
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    audit.record(session, actor=actor, action="export", details={"format": "jsonl", "snippets": count})
    return count
