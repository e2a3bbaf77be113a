"""Leasing snippets to reviewers: the server's choice alone, random, unlinkable, bounded.

Rules (threat model: a reviewer must not piece a conversation or a customer together, nor steer):
- random order (each snippet has a random key; a request starts at a random point of that order);
- never two snippets of one recording to one reviewer, never one customer within the window
  (`ReviewerExclusion` rows, looked up per candidate by primary key);
- a lease expires and returns the snippet to the pool; one active lease per reviewer;
- hourly and per-shift quotas; N-way blind overlap (`graders_needed`); gold snippets mixed in.

Concurrency: a request first locks the reviewer's `ReviewerState` row (serialising one reviewer's
requests), then picks a snippet with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two reviewers never
take the same open slot. On SQLite the first statement is a write, which takes the database write lock
for the whole transaction (writes are serialised). The audit record is written last: it locks the
log's head row, and nothing may wait on another lock while holding it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from earshot.audit import services as audit
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.review.models import Assignment, ReviewerExclusion, ReviewerState, Snippet
from earshot.review.policy import ReviewPolicy, policy_for
from earshot.review.store import lock_snippet

POOL = "queued"
GOLD = "gold"
SCOPE_RECORDING = "r"
SCOPE_CUSTOMER = "c"


class QuotaReached(Exception):
    """The reviewer has had as many snippets as the hourly or shift quota allows."""

    def __init__(self, which: str, limit: int) -> None:
        super().__init__(f"{which} quota of {limit} snippets reached")
        self.which = which
        self.limit = limit


@dataclass(frozen=True)
class QuotaUse:
    """How much of their quotas a reviewer has used."""

    last_hour: int
    this_shift: int
    per_hour: int
    per_shift: int


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _insert(session: Session):  # noqa: ANN202 - the dialect's insert construct
    return postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert


def lock_reviewer(session: Session, reviewer_id: str) -> None:
    """Take the reviewer's row lock (and, on SQLite, the write lock) for the rest of the transaction.

    One statement: an upsert whose conflict branch updates (and so locks) the existing row.
    """
    ins = _insert(session)(ReviewerState.__table__).values(reviewer_id=reviewer_id)  # Core: no ORM DML cost
    session.execute(
        ins.on_conflict_do_update(
            index_elements=["reviewer_id"], set_={"reviewer_id": ins.excluded.reviewer_id}
        )
    )


def active_assignment(session: Session, reviewer_id: str, now: datetime | None = None) -> Assignment | None:
    """The reviewer's unexpired lease, if any."""
    now = now or utcnow()
    return session.scalar(
        select(Assignment)
        .where(
            Assignment.reviewer_id == reviewer_id,
            Assignment.status == "active",
            Assignment.lease_expires_at > now,
        )
        .limit(1)
    )


def _use_and_current(
    session: Session, policy: ReviewPolicy, reviewer_id: str, now: datetime
) -> tuple[QuotaUse, str | None]:
    """Quota use and the id of the reviewer's unexpired lease, in one indexed query."""
    since_shift = now - policy.shift
    since_hour = now - timedelta(hours=1)
    live = (Assignment.status == "active") & (Assignment.lease_expires_at > now)
    row = session.execute(
        select(
            func.count().filter(Assignment.assigned_at > since_hour),
            func.count().filter(Assignment.assigned_at > since_shift),
            func.max(case((live, Assignment.id))),
        ).where(
            Assignment.reviewer_id == reviewer_id,
            (Assignment.assigned_at > since_shift) | (Assignment.status == "active"),
        )
    ).one()
    use = QuotaUse(int(row[0] or 0), int(row[1] or 0), policy.quota_per_hour, policy.quota_per_shift)
    return use, row[2]


def quota_use(
    session: Session, policy: ReviewPolicy, reviewer_id: str, now: datetime | None = None
) -> QuotaUse:
    """Snippets assigned to the reviewer in the last hour and the last shift."""
    return _use_and_current(session, policy, reviewer_id, now or utcnow())[0]


def release_slot(session: Session, snippet_id: str) -> None:
    """One lease on the snippet ended without a grade: the slot is open again."""
    session.execute(
        update(Snippet)
        .where(Snippet.id == snippet_id, Snippet.in_flight > 0)
        .values(in_flight=Snippet.in_flight - 1)
    )


def expire_leases(session: Session, now: datetime | None = None, *, limit: int | None = None) -> int:
    """Mark expired leases and return their snippets' slots to the pool; safe to run concurrently.

    Each snippet is locked before its leases (lock order: store.py), in id order, and one another
    transaction holds is left for a later sweep (PostgreSQL); each lease is ended by a conditional
    update, so a lease is never expired (and its slot released) twice.
    """
    now = now or utcnow()
    query = (
        select(Assignment.id, Assignment.snippet_id)
        .where(Assignment.status == "active", Assignment.lease_expires_at <= now)
        .order_by(Assignment.lease_expires_at)
    )
    if limit:
        query = query.limit(limit)
    count = 0
    locked: dict[str, bool] = {}
    for assignment_id, snippet_id in sorted(session.execute(query).all(), key=lambda row: row[1]):
        if snippet_id not in locked:
            locked[snippet_id] = lock_snippet(session, snippet_id, skip_locked=True) is not None
        if not locked[snippet_id]:
            continue
        ended = session.execute(
            update(Assignment)
            .where(Assignment.id == assignment_id, Assignment.status == "active")
            .values(status="expired", completed_at=now)
            .execution_options(synchronize_session=False)
        )
        if ended.rowcount == 1:
            release_slot(session, snippet_id)
            count += 1
    return count


def _eligible(reviewer_id: str, status: str, since_customer: datetime):  # noqa: ANN202 - SQL expression
    seen_recording = exists().where(
        ReviewerExclusion.reviewer_id == reviewer_id,
        ReviewerExclusion.scope == SCOPE_RECORDING,
        ReviewerExclusion.key == Snippet.recording_id,
    )
    recent_customer = exists().where(
        ReviewerExclusion.reviewer_id == reviewer_id,
        ReviewerExclusion.scope == SCOPE_CUSTOMER,
        ReviewerExclusion.key == Snippet.customer_id,
        ReviewerExclusion.last_at > since_customer,
    )
    return (
        (Snippet.status == status)
        & (Snippet.grades_done + Snippet.in_flight < Snippet.graders_needed)
        & ~seen_recording
        & ~recent_customer
    )


def pick_snippet(session: Session, reviewer_id: str, status: str, since_customer: datetime) -> Snippet | None:
    """A random eligible snippet in `status`, locked (rows other reviewers are taking are skipped)."""
    start = random.random()
    pg = _dialect(session) == "postgresql"
    condition = _eligible(reviewer_id, status, since_customer)
    for window in (Snippet.rand >= start, Snippet.rand < start):
        query = select(Snippet).where(condition, window).order_by(Snippet.rand).limit(1)
        if pg:
            query = query.with_for_update(of=Snippet, skip_locked=True)
        snippet = session.scalar(query)
        if snippet is not None:
            return snippet
    return None


def _exclude(session: Session, reviewer_id: str, snippet: Snippet, now: datetime) -> None:
    """Record the recording (forever) and the customer (window starts now) as seen by the reviewer."""
    stmt = _insert(session)(ReviewerExclusion.__table__).values(
        [
            {
                "reviewer_id": reviewer_id,
                "scope": SCOPE_RECORDING,
                "key": snippet.recording_id,
                "last_at": now,
            },
            {"reviewer_id": reviewer_id, "scope": SCOPE_CUSTOMER, "key": snippet.customer_id, "last_at": now},
        ]
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["reviewer_id", "scope", "key"], set_={"last_at": stmt.excluded.last_at}
        )
    )


def next_assignment(
    session: Session,
    deployment: Deployment,
    reviewer_id: str,
    *,
    ip: str | None = None,
    policy: ReviewPolicy | None = None,
    now: datetime | None = None,
) -> Assignment | None:
    """The reviewer's current lease, or a new one on a random eligible snippet (None if none).

    Raises `QuotaReached` when the reviewer has no active lease and a quota is used up. The caller
    commits (the row locks last until then).
    """
    policy = policy or policy_for(deployment)
    now = now or utcnow()
    lock_reviewer(session, reviewer_id)
    use, current_id = _use_and_current(session, policy, reviewer_id, now)
    if current_id is not None:
        return session.get(Assignment, current_id)
    if use.last_hour >= policy.quota_per_hour:
        raise QuotaReached("hourly", policy.quota_per_hour)
    if use.this_shift >= policy.quota_per_shift:
        raise QuotaReached("shift", policy.quota_per_shift)
    expire_leases(session, now, limit=policy.expire_batch)
    since_customer = now - policy.customer_window
    snippet = None
    if policy.gold_rate > 0 and random.random() < policy.gold_rate:
        snippet = pick_snippet(session, reviewer_id, GOLD, since_customer)
    if snippet is None:
        snippet = pick_snippet(session, reviewer_id, POOL, since_customer)
    if snippet is None:
        return None
    snippet.in_flight += 1
    assignment = Assignment(
        snippet_id=snippet.id,
        reviewer_id=reviewer_id,
        recording_id=snippet.recording_id,
        customer_id=snippet.customer_id,
        assigned_at=now,
        lease_expires_at=now + policy.lease,
        is_gold=snippet.status == GOLD,
    )
    session.add(assignment)
    _exclude(session, reviewer_id, snippet, now)
    session.flush()
    audit.record(
        session,
        actor=f"user:{reviewer_id}",
        action="task.assigned",
        target=snippet.id,
        ip=ip,
        details={"assignment": assignment.id},
    )
    return assignment
