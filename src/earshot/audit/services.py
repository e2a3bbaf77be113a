"""Append audit records in the caller's transaction: no action is committed without its record."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from earshot.audit.models import AuditRecord
from earshot.database import utcnow


def canonical(record: AuditRecord) -> bytes:
    """The bytes a leaf hash covers (RFC 6962 leaf: SHA-256(0x00 || entry))."""
    body = {
        "seq": record.seq,
        "at": record.at.isoformat(),
        "actor": record.actor,
        "action": record.action,
        "target": record.target,
        "ip": record.ip,
        "outcome": record.outcome,
        "details": record.details,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    outcome: str = "ok",
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one event to the log inside `session`'s transaction."""
    seq = (session.scalar(select(func.max(AuditRecord.seq))) or 0) + 1
    rec = AuditRecord(
        seq=seq,
        at=utcnow(),
        actor=actor,
        action=action,
        target=target,
        ip=ip,
        outcome=outcome,
        details=json.dumps(details or {}, sort_keys=True, separators=(",", ":")),
    )
    rec.leaf_hash = hashlib.sha256(b"\x00" + canonical(rec)).digest()
    session.add(rec)
    session.flush()
    return rec
