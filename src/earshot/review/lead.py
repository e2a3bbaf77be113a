"""Figures for leads (and, counts only, for admins): queue sizes, reviewer throughput, gold accuracy.

Nothing here returns audio or transcripts; per-reviewer figures are for leads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from earshot.access.models import User
from earshot.database import utcnow
from earshot.review.models import Assignment, Consolidation, Escalation, Grade, Snippet
from earshot.review.policy import ReviewPolicy


@dataclass(frozen=True)
class QueueCounts:
    """How many snippets are where (counts only: safe for every staff role that may see them)."""

    queued: int
    open_slots: int
    gold: int
    graded: int
    escalated: int
    safety_hold: int
    quarantined: int
    active_leases: int
    awaiting_adjudication: int
    open_escalations: dict[str, int]


@dataclass(frozen=True)
class ReviewerFigures:
    """One reviewer's throughput and gold accuracy."""

    reviewer_id: str
    email: str
    graded_last_hour: int
    graded_shift: int
    graded_total: int
    skipped: int
    flagged: int
    expired: int
    gold_graded: int
    gold_passed: int

    @property
    def gold_accuracy(self) -> float | None:
        return None if not self.gold_graded else round(self.gold_passed / self.gold_graded, 3)


def queue_counts(session: Session, now: datetime | None = None) -> QueueCounts:
    """Snippets per status, open grader slots, active leases, adjudications and escalations waiting."""
    now = now or utcnow()
    by_status = dict(session.execute(select(Snippet.status, func.count()).group_by(Snippet.status)).all())
    slots = session.scalar(
        select(
            func.coalesce(func.sum(Snippet.graders_needed - Snippet.grades_done - Snippet.in_flight), 0)
        ).where(Snippet.status == "queued")
    )
    leases = session.scalar(
        select(func.count())
        .select_from(Assignment)
        .where(Assignment.status == "active", Assignment.lease_expires_at > now)
    )
    adjudication = session.scalar(
        select(func.count()).select_from(Consolidation).where(Consolidation.status == "adjudication")
    )
    escalations = dict(
        session.execute(
            select(Escalation.kind, func.count()).where(Escalation.status == "open").group_by(Escalation.kind)
        ).all()
    )
    return QueueCounts(
        queued=int(by_status.get("queued", 0)),
        open_slots=int(slots or 0),
        gold=int(by_status.get("gold", 0)),
        graded=int(by_status.get("graded", 0)),
        escalated=int(by_status.get("escalated", 0)),
        safety_hold=int(by_status.get("safety_hold", 0)),
        quarantined=int(by_status.get("quarantined", 0)),
        active_leases=int(leases or 0),
        awaiting_adjudication=int(adjudication or 0),
        open_escalations={str(k): int(v) for k, v in escalations.items()},
    )


def reviewer_figures(
    session: Session, policy: ReviewPolicy, now: datetime | None = None
) -> list[ReviewerFigures]:
    """Per reviewer (who ever held a lease): grades in the last hour, shift and overall; gold accuracy."""
    now = now or utcnow()
    hour, shift = now - timedelta(hours=1), now - policy.shift
    grades = {
        row.reviewer_id: row
        for row in session.execute(
            select(
                Grade.reviewer_id,
                func.count().label("total"),
                func.sum(case((Grade.created_at > hour, 1), else_=0)).label("hour"),
                func.sum(case((Grade.created_at > shift, 1), else_=0)).label("shift"),
                func.sum(case((Grade.is_gold.is_(True), 1), else_=0)).label("gold"),
                func.sum(case((Grade.gold_pass.is_(True), 1), else_=0)).label("gold_pass"),
            ).group_by(Grade.reviewer_id)
        )
    }
    ends = {
        row.reviewer_id: row
        for row in session.execute(
            select(
                Assignment.reviewer_id,
                func.sum(case((Assignment.status == "skipped", 1), else_=0)).label("skipped"),
                func.sum(case((Assignment.status == "flagged", 1), else_=0)).label("flagged"),
                func.sum(case((Assignment.status == "expired", 1), else_=0)).label("expired"),
            ).group_by(Assignment.reviewer_id)
        )
    }
    ids = sorted(set(grades) | set(ends))
    emails = dict(session.execute(select(User.id, User.email).where(User.id.in_(ids))).all()) if ids else {}
    out = []
    for rid in ids:
        g, e = grades.get(rid), ends.get(rid)
        out.append(
            ReviewerFigures(
                reviewer_id=rid,
                email=emails.get(rid, "?"),
                graded_last_hour=int(g.hour or 0) if g else 0,
                graded_shift=int(g.shift or 0) if g else 0,
                graded_total=int(g.total or 0) if g else 0,
                skipped=int(e.skipped or 0) if e else 0,
                flagged=int(e.flagged or 0) if e else 0,
                expired=int(e.expired or 0) if e else 0,
                gold_graded=int(g.gold or 0) if g else 0,
                gold_passed=int(g.gold_pass or 0) if g else 0,
            )
        )
    return out
