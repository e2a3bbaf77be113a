"""Snippets in the review queue: storing them, leasing them to reviewers, grades, gold and export.

Assignment is the server's choice alone (threat model: a reviewer must not steer towards a recording or
customer): see `earshot.review.assignment`. A grade is accepted only from the reviewer holding the lease,
after the audio was delivered and could have been heard to the end (`mark_played`), once.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from earshot.audit import services as audit
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.intake.models import Recording
from earshot.pipeline.types import DeidSnippet
from earshot.review import consolidation
from earshot.review.assignment import (  # noqa: F401 - part of this module's interface
    QuotaReached,
    active_assignment,
    expire_leases,
    next_assignment,
)
from earshot.review.escalation import GRADE_FLAGS
from earshot.review.models import Assignment, Consolidation, Grade, Snippet
from earshot.review.policy import MAX_PLAYBACK_SPEED, policy_for
from earshot.review.store import (  # noqa: F401 - part of this module's interface
    InvalidGrade,
    NotFound,
    NotPlayed,
    claim,
    lock_snippet,
    owned_active,
    remove_snippet,
)
from earshot.review.text import wer
from earshot.review.wav import encode_wav
from earshot.vault.services import VaultError

LEASE = timedelta(minutes=10)  # defaults; the deployment's ReviewPolicy decides
CUSTOMER_WINDOW = timedelta(days=30)
MAX_TRANSCRIPT_CHARS = consolidation.MAX_TRANSCRIPT_CHARS
PLAY_SLACK_S = 0.3  # network and decoding time the played-to-end check allows for
GOLD_GRADERS = 1_000_000_000  # a gold snippet never runs out of slots


@dataclass(frozen=True)
class TaskView:
    """What a reviewer is shown: the assignment id and the masked machine transcript, nothing else."""

    assignment_id: str
    transcript: str
    duration_s: float
    lease_expires_at: datetime
    audio_fetched: bool = False
    played: bool = False


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
    row.transcript_enc = vault.seal_text(
        session, recording.customer_id, f"snippet:{row.id}:text", snippet.transcript
    )
    session.flush()
    return row


def make_gold(
    session: Session,
    deployment: Deployment,
    snippet: Snippet,
    answer: str,
    *,
    intent_correct: bool | None = None,
    actor: str = "cli:admin",
) -> Snippet:
    """Turn a snippet into a gold snippet with a known answer, mixed into reviewers' queues to score them.

    Gold snippets obey the same unlinkability rules, are never exported, and never run out of slots.
    """
    snippet.gold_transcript_enc = deployment.vault.seal_text(
        session, snippet.customer_id, f"gold:{snippet.id}:text", answer.strip()
    )
    snippet.gold_intent_correct = intent_correct
    snippet.status = "gold"
    snippet.graders_needed = GOLD_GRADERS
    session.flush()
    audit.record(session, actor=actor, action="snippet.gold", target=snippet.id)
    return snippet


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


# -- the reviewer's task -------------------------------------------------------------------------
@contextmanager
def _gone_if_unreadable() -> Iterator[None]:
    """An erased customer's key is gone before their rows are purged: to a reviewer that is 'no such task'."""
    try:
        yield
    except VaultError:
        raise NotFound("no such task") from None


def task_view(session: Session, deployment: Deployment, reviewer_id: str, assignment_id: str) -> TaskView:
    """The reviewer's own active task: masked machine transcript and timing, never ids of the source."""
    assignment = owned_active(session, reviewer_id, assignment_id)
    snippet = session.get(Snippet, assignment.snippet_id)
    if snippet is None:
        raise NotFound("no such task")
    with _gone_if_unreadable():
        text = deployment.vault.open_text(
            session, snippet.customer_id, f"snippet:{snippet.id}:text", snippet.transcript_enc
        )
    return TaskView(
        assignment.id,
        text,
        snippet.duration_s,
        assignment.lease_expires_at,
        audio_fetched=assignment.audio_first_at is not None,
        played=assignment.played_at is not None,
    )


def assign_and_view(
    session: Session, deployment: Deployment, reviewer_id: str, *, ip: str | None = None
) -> TaskView | None:
    """Assign (or return the current lease), commit, then decrypt the transcript for the view.

    The commit comes before decryption so the locks the assignment took (reviewer row, snippet row,
    audit head) are held as briefly as possible.
    """
    assignment = next_assignment(session, deployment, reviewer_id, ip=ip)
    if assignment is None:
        session.commit()
        return None
    snippet = session.get(Snippet, assignment.snippet_id)  # already loaded when newly picked
    if snippet is None:
        raise NotFound("no such task")
    customer_id, snippet_id, sealed, duration = (
        snippet.customer_id,
        snippet.id,
        snippet.transcript_enc,
        snippet.duration_s,
    )
    view_args = (assignment.id, assignment.lease_expires_at, assignment.audio_first_at, assignment.played_at)
    session.commit()
    with _gone_if_unreadable():
        text = deployment.vault.open_text(session, customer_id, f"snippet:{snippet_id}:text", sealed)
    return TaskView(
        view_args[0],
        text,
        duration,
        view_args[1],
        audio_fetched=view_args[2] is not None,
        played=view_args[3] is not None,
    )


def task_state(session: Session, reviewer_id: str, assignment_id: str) -> str:
    """'active' while the reviewer may still work on the task, else 'gone' (expired, withdrawn, done)."""
    try:
        owned_active(session, reviewer_id, assignment_id)
    except NotFound:
        return "gone"
    return "active"


def note_delivery(session: Session, assignment: Assignment, now: datetime | None = None) -> None:
    """Record that the lease holder was sent the audio (the first delivery starts the listening clock)."""
    now = now or utcnow()
    session.execute(  # one statement: the count, and the first delivery's time if there is none yet
        update(Assignment)
        .where(Assignment.id == assignment.id)
        .values(
            deliveries=Assignment.deliveries + 1,
            audio_first_at=func.coalesce(Assignment.audio_first_at, now),
        )
        .execution_options(synchronize_session=False)
    )


def task_audio_source(
    session: Session, deployment: Deployment, reviewer_id: str, assignment_id: str
) -> tuple[Assignment, Snippet, bytes]:
    """The lease, its snippet and the decrypted audio, for the reviewer holding the lease (nothing recorded:
    callers that deliver it call `note_delivery` and audit)."""
    assignment = owned_active(session, reviewer_id, assignment_id)
    snippet = session.get(Snippet, assignment.snippet_id)
    if snippet is None or snippet.audio_blob_id is None or snippet.status not in ("queued", "gold", "graded"):
        raise NotFound("no such task")
    with _gone_if_unreadable():
        audio = deployment.vault.get_blob(session, snippet.customer_id, snippet.audio_blob_id)
    return assignment, snippet, audio


def task_audio(
    session: Session, deployment: Deployment, reviewer_id: str, assignment_id: str, *, ip: str | None = None
) -> bytes:
    """Decrypt the snippet audio for the reviewer holding the lease; recorded on the lease and in the log."""
    assignment, snippet, audio = task_audio_source(session, deployment, reviewer_id, assignment_id)
    record_delivery(session, reviewer_id, assignment, snippet, ip=ip)
    return audio


def record_delivery(
    session: Session, reviewer_id: str, assignment: Assignment, snippet: Snippet, *, ip: str | None = None
) -> None:
    """Note the delivery on the lease and append its audit record (last: it locks the log's head)."""
    note_delivery(session, assignment)
    audit.record(
        session,
        actor=f"user:{reviewer_id}",
        action="audio.delivered",
        target=snippet.id,
        ip=ip,
        details={"assignment": assignment.id, "duration_s": snippet.duration_s},
    )


def mark_played(
    session: Session, deployment: Deployment, reviewer_id: str, assignment_id: str, *, ip: str | None = None
) -> None:
    """The reviewer's player reached the end. Accepted only after a delivery, and only once enough time
    has passed since it to hear the snippet at the fastest playback speed."""
    now = utcnow()
    assignment = owned_active(session, reviewer_id, assignment_id, now)
    snippet = session.get(Snippet, assignment.snippet_id)
    if snippet is None:
        raise NotFound("no such task")
    if assignment.audio_first_at is None:
        raise NotPlayed("the audio has not been fetched yet")
    heard_s = (now - assignment.audio_first_at).total_seconds()
    if heard_s + PLAY_SLACK_S < snippet.duration_s / MAX_PLAYBACK_SPEED:
        raise NotPlayed("the snippet cannot have been heard to the end yet")
    if assignment.played_at is not None:
        return
    session.execute(
        update(Assignment)
        .where(Assignment.id == assignment.id, Assignment.played_at.is_(None))
        .values(played_at=now)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor=f"user:{reviewer_id}",
        action="audio.played",
        target=snippet.id,
        ip=ip,
        details={"assignment": assignment.id, "played_s": snippet.duration_s},
    )


def _gold_score(
    session: Session, deployment: Deployment, snippet: Snippet, transcript: str, intent: bool | None
) -> tuple[float, bool]:
    answer = deployment.vault.open_text(
        session, snippet.customer_id, f"gold:{snippet.id}:text", snippet.gold_transcript_enc or b""
    )
    error = wer(answer, transcript)
    passed = error <= policy_for(deployment).gold_pass_wer
    if snippet.gold_intent_correct is not None and intent is not None:
        passed = passed and intent == snippet.gold_intent_correct
    return round(error, 4), passed


def submit_grade(
    session: Session,
    deployment: Deployment,
    reviewer_id: str,
    assignment_id: str,
    *,
    transcript: str,
    accuracy: int,
    intent_correct: bool | None = None,
    flags: tuple[str, ...] | list[str] = (),
    ip: str | None = None,
) -> Grade:
    """Store the reviewer's corrected transcript (encrypted) and grade; close the lease; consolidate when
    the snippet's last grader is done."""
    if not 1 <= int(accuracy) <= 5:
        raise InvalidGrade("accuracy must be between 1 and 5")
    flags = sorted(set(flags))
    if any(f not in GRADE_FLAGS for f in flags):
        raise InvalidGrade(f"grade flags must be among {', '.join(GRADE_FLAGS)}")
    transcript = (transcript or "").strip()
    if len(transcript) > MAX_TRANSCRIPT_CHARS:
        raise InvalidGrade(f"transcript longer than {MAX_TRANSCRIPT_CHARS} characters")
    if not transcript and not flags:
        raise InvalidGrade("an empty transcript needs the unintelligible or other-language flag")
    assignment = owned_active(session, reviewer_id, assignment_id)
    if assignment.played_at is None:
        raise NotPlayed("play the snippet to the end before submitting")
    snippet = lock_snippet(session, assignment.snippet_id)  # before the lease (lock order: store.py)
    if snippet is None:
        raise NotFound("no such task")
    claim(session, reviewer_id, assignment_id, "completed")
    grade = Grade(
        snippet_id=snippet.id,
        assignment_id=assignment.id,
        reviewer_id=reviewer_id,
        accuracy=int(accuracy),
        transcript_enc=b"",
        intent_correct=intent_correct,
        flags=",".join(flags),
        is_gold=assignment.is_gold,
    )
    session.add(grade)
    session.flush()
    grade.transcript_enc = deployment.vault.seal_text(
        session, snippet.customer_id, f"grade:{grade.id}:text", transcript
    )
    if assignment.is_gold and snippet.gold_transcript_enc is not None:
        grade.gold_wer, grade.gold_pass = _gold_score(
            session, deployment, snippet, transcript, intent_correct
        )
    snippet.grades_done += 1
    snippet.in_flight = max(0, snippet.in_flight - 1)
    consolidated = None
    if snippet.status == "queued" and snippet.grades_done >= snippet.graders_needed:
        snippet.status = "graded"
        session.flush()
        consolidated = consolidation.consolidate(session, deployment, snippet)
    session.flush()
    details: dict[str, object] = {"assignment": assignment.id, "accuracy": int(accuracy)}
    if flags:
        details["flags"] = flags
    if consolidated is not None:
        details["consolidation"] = consolidated.status
    audit.record(
        session, actor=f"user:{reviewer_id}", action="task.graded", target=snippet.id, ip=ip, details=details
    )
    return grade


# -- export -------------------------------------------------------------------------------------
def export_jsonl(session: Session, deployment: Deployment, out: IO[str], *, actor: str = "cli:admin") -> int:
    """Write every graded (non-gold) snippet as one JSON line: pseudonymous ids, transcripts, grades, the
    consolidated transcript and agreement figures; no customer or recording ids."""
    vault = deployment.vault
    count = 0
    query = (
        select(Snippet)
        .where(Snippet.grades_done > 0, Snippet.status.in_(("queued", "graded")))
        .order_by(Snippet.created_at, Snippet.id)
    )
    for snippet in session.scalars(query):
        grades = list(
            session.scalars(
                select(Grade)
                .where(Grade.snippet_id == snippet.id, Grade.is_gold.is_(False))
                .order_by(Grade.created_at, Grade.id)
            )
        )
        row: dict[str, object] = {
            "snippet_id": snippet.id,
            "duration_s": snippet.duration_s,
            "status": snippet.status,
            "machine_transcript": vault.open_text(
                session, snippet.customer_id, f"snippet:{snippet.id}:text", snippet.transcript_enc
            ),
            "grades": [
                {
                    "grade_id": g.id,
                    "accuracy": g.accuracy,
                    "intent_correct": g.intent_correct,
                    "flags": [f for f in g.flags.split(",") if f],
                    "transcript": vault.open_text(
                        session, snippet.customer_id, f"grade:{g.id}:text", g.transcript_enc
                    ),
                }
                for g in grades
            ],
            "consolidated": None,
        }
        cons = session.get(Consolidation, snippet.id)
        if cons is not None:
            row["consolidated"] = {
                "transcript": consolidation.consolidated_text(session, deployment, snippet, cons),
                "status": cons.status,
                "graders": cons.graders,
                "mean_pairwise_wer": cons.mean_pairwise_wer,
                "grade_agreement": cons.grade_agreement,
                "intent_agreement": cons.intent_agreement,
                "mean_accuracy": cons.accuracy,
                "ties": cons.ties,
            }
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    audit.record(session, actor=actor, action="export", details={"format": "jsonl", "snippets": count})
    return count
