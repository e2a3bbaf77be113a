"""Reading the log: filtered record search for `earshot audit show` and the API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.audit.models import AuditRecord
from earshot.audit.signing import format_time


def search_records(
    session: Session,
    *,
    actor: str | None = None,
    target: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: int = 0,
    limit: int = 100,
) -> list[AuditRecord]:
    """Records matching every given filter, oldest first. `action` ending in '.' or '*' is a prefix."""
    query = select(AuditRecord).where(AuditRecord.seq > after_seq)
    if actor:
        query = query.where(AuditRecord.actor == actor)
    if target:
        query = query.where(AuditRecord.target == target)
    if action:
        if action.endswith(("*", ".")):
            query = query.where(AuditRecord.action.startswith(action.rstrip("*"), autoescape=True))
        else:
            query = query.where(AuditRecord.action == action)
    if since:
        query = query.where(AuditRecord.at >= _utc(since))
    if until:
        query = query.where(AuditRecord.at < _utc(until))
    return list(session.scalars(query.order_by(AuditRecord.seq).limit(limit)))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def record_json(rec: AuditRecord) -> dict[str, Any]:
    """A record as JSON (what the log holds, plus its leaf hash)."""
    return {
        "seq": rec.seq,
        "at": format_time(rec.at),
        "actor": rec.actor,
        "action": rec.action,
        "target": rec.target,
        "ip": rec.ip,
        "outcome": rec.outcome,
        "details": json.loads(rec.details or "{}"),
        "leaf_hash": bytes(rec.leaf_hash).hex(),
    }
