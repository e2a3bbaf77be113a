"""Shared pieces of the review domain: errors, lease checks and transitions, snippet removal.

Lock order everywhere (so PostgreSQL transactions never deadlock): reviewer state -> snippet ->
its assignments -> audit head (always last). The snippet row is the mutex for its leases: whoever ends
a lease (grade, skip, flag, revocation, expiry) locks the snippet first, so two transactions that end
leases of one snippet (two flags at once, a flag and a grade) queue on it instead of each holding one
lease row while waiting for the other's. Only a lease's own holder touches its row without the snippet
(delivery, playback), and then waits for nothing but the audit head.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.review.models import Assignment, Snippet


class NotFound(Exception):
    """Nothing this person may see under that id (also used for other reviewers' work)."""


class InvalidGrade(ValueError):
    """The submitted grade, flag or skip is malformed."""


class NotPlayed(Exception):
    """The snippet has not been heard (to the end) yet: no grade before that."""


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once the session's transaction commits (e.g. deleting a blob no row refers to)."""

    def _run(_session: Session) -> None:
        action()

    event.listen(session, "after_commit", _run, once=True)


def owned_active(
    session: Session, reviewer_id: str, assignment_id: str, now: datetime | None = None
) -> Assignment:
    """The reviewer's own unexpired active lease under that id, else NotFound (no matter why)."""
    now = now or utcnow()
    assignment = session.get(Assignment, assignment_id, populate_existing=True)
    if (
        assignment is None
        or assignment.reviewer_id != reviewer_id
        or assignment.status != "active"
        or assignment.lease_expires_at <= now
    ):
        raise NotFound("no such task")
    return assignment


def claim(
    session: Session,
    reviewer_id: str,
    assignment_id: str,
    status: str,
    now: datetime | None = None,
    **values: object,
) -> None:
    """End the reviewer's active lease with `status`, atomically: of two concurrent submissions (or a
    submission racing expiry or revocation) exactly one wins; the others get NotFound."""
    now = now or utcnow()
    result = session.execute(
        update(Assignment)
        .where(
            Assignment.id == assignment_id,
            Assignment.reviewer_id == reviewer_id,
            Assignment.status == "active",
            Assignment.lease_expires_at > now,
        )
        .values(status=status, completed_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise NotFound("no such task")


def revoke_leases(session: Session, snippet_id: str, now: datetime | None = None) -> int:
    """End every active lease on a snippet (it leaves all queues); returns how many."""
    now = now or utcnow()
    result = session.execute(
        update(Assignment)
        .where(Assignment.snippet_id == snippet_id, Assignment.status == "active")
        .values(status="revoked", completed_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def lock_snippet(session: Session, snippet_id: str, *, skip_locked: bool = False) -> Snippet | None:
    """The snippet, re-read and row-locked for the rest of the transaction (taken before its leases).

    With `skip_locked`, None when another transaction holds it (PostgreSQL), instead of waiting.
    """
    query = select(Snippet).where(Snippet.id == snippet_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=skip_locked)
    return session.scalar(query)


def remove_snippet(session: Session, deployment: Deployment, snippet: Snippet) -> None:
    """Delete a snippet, its audio blob, and (by cascade) its assignments and grades."""
    blob_id = snippet.audio_blob_id
    session.delete(snippet)
    session.flush()
    if blob_id:
        deployment.vault.delete_blob(blob_id)
