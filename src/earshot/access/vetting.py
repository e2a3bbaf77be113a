"""Vetting: no task for a reviewer or lead until a background check, training and a signed
confidentiality agreement are recorded and unexpired (DESIGN: 'no vetting'). Expiry stops assignment by
itself, because `vetting_ok` is evaluated at assignment time against today's date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.access.models import User, VettingRecord
from earshot.database import utcnow

KINDS = ("background_check", "training", "confidentiality")
KIND_LABELS = {
    "background_check": "background check",
    "training": "training",
    "confidentiality": "confidentiality agreement",
}
VETTED_ROLES = ("reviewer", "lead")


class VettingError(ValueError):
    """A vetting record is invalid; the message says why."""


@dataclass(frozen=True)
class VettingStatus:
    ok: bool
    problems: list[str]
    expires_on: dict[str, date | None]


def record_vetting(
    session: Session,
    user_id: str,
    kind: str,
    *,
    completed_on: date,
    expires_on: date,
    recorded_by: str,
    reference: str | None = None,
) -> VettingRecord:
    """Record one completed vetting step; the newest record of each kind is the one that counts."""
    if kind not in KINDS:
        raise VettingError(f"unknown vetting kind {kind!r} (one of {', '.join(KINDS)})")
    if expires_on <= completed_on:
        raise VettingError("the expiry date must be after the completion date")
    if completed_on > utcnow().date():
        raise VettingError("the completion date cannot be in the future")
    if session.get(User, user_id) is None:
        raise VettingError("no such user")
    rec = VettingRecord(
        user_id=user_id,
        kind=kind,
        completed_on=completed_on,
        expires_on=expires_on,
        recorded_by=recorded_by,
        reference=(reference or None) and reference[:120],
    )
    session.add(rec)
    session.flush()
    return rec


def vetting_status(session: Session, user_id: str, *, today: date | None = None) -> VettingStatus:
    """Each kind's current expiry and what (if anything) blocks the person."""
    today = today or utcnow().date()
    rows = session.scalars(
        select(VettingRecord)
        .where(VettingRecord.user_id == user_id)
        .order_by(VettingRecord.created_at, VettingRecord.id)
    ).all()
    latest: dict[str, VettingRecord] = {}
    for row in rows:
        latest[row.kind] = row
    problems = []
    for kind in KINDS:
        rec = latest.get(kind)
        if rec is None:
            problems.append(f"{KIND_LABELS[kind]} not recorded")
        elif rec.expires_on <= today:
            problems.append(f"{KIND_LABELS[kind]} expired on {rec.expires_on.isoformat()}")
    return VettingStatus(
        ok=not problems,
        problems=problems,
        expires_on={k: (latest[k].expires_on if k in latest else None) for k in KINDS},
    )


def vetting_ok(session: Session, user_id: str) -> tuple[bool, str]:
    """(may be assigned work, reason). Used by the review queue before every assignment."""
    user = session.get(User, user_id)
    if user is None:
        return False, "no such user"
    if user.status != "active":
        return False, f"account is {user.status}"
    status = vetting_status(session, user_id)
    if not status.ok:
        return False, "; ".join(status.problems)
    return True, "ok"
