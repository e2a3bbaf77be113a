"""Append audit records in the caller's transaction: no action is committed without its record.

Appending locks the single tree-head row (`SELECT ... FOR UPDATE` on PostgreSQL; on SQLite the first
write of a transaction takes the database write lock), so concurrent transactions get consecutive
sequence numbers and never fork the tree. The head keeps the compact range of the tree, so an append
costs O(log n) hashing and a handful of rows whatever the size of the log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from earshot.audit import context as audit_context
from earshot.audit.merkle import EMPTY_ROOT, Frontier, leaf_hash
from earshot.audit.models import AuditHead, AuditNode, AuditRecord
from earshot.audit.signing import TIME_FORMAT
from earshot.database import utcnow

HEAD_ID = 1
NODE_STRIDE = 4  # interior hashes are stored for levels 4, 8, 12, ...
ENTRY_VERSION = "earshot.audit/1"

# Keys that would put content or direct identifiers into the log; `record` refuses them.
FORBIDDEN_DETAIL_KEYS = frozenset(
    {
        "audio",
        "transcript",
        "text",
        "hypothesis",
        "email",
        "password",
        "token",
        "secret",
        "totp",
        "external_id",
        "customer_external_id",
        "phone",
    }
)

# The clock of the log; tests replace it to replay an event stream at chosen times.
clock = utcnow


def canonical_json(value: Any) -> str:
    """Compact, key-sorted, ASCII JSON: one text per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def entry_bytes(
    seq: int, at: str, actor: str, action: str, target: str | None, ip: str | None, outcome: str, details: str
) -> bytes:
    """The bytes a leaf hash covers: a JSON array with the version tag and every column.

    `at` is the canonical UTC text (`signing.TIME_FORMAT`), `details` the stored canonical JSON text.
    """
    return json.dumps(
        [ENTRY_VERSION, seq, at, actor, action, target, ip, outcome, details], separators=(",", ":")
    ).encode()


def canonical(record: AuditRecord) -> bytes:
    """The entry bytes of a stored record (RFC 6962 leaf: SHA-256(0x00 || entry))."""
    return entry_bytes(
        record.seq,
        record.at.astimezone(UTC).strftime(TIME_FORMAT),
        record.actor,
        record.action,
        record.target,
        record.ip,
        record.outcome,
        record.details,
    )


@dataclass(frozen=True)
class Event:
    """One event to append with `record_many`."""

    actor: str
    action: str
    target: str | None = None
    outcome: str = "ok"
    ip: str | None = None
    details: Mapping[str, Any] | None = None


def _check_details(details: Mapping[str, Any] | None) -> str:
    if not details:
        return "{}"
    bad = FORBIDDEN_DETAIL_KEYS.intersection(k.lower() for k in details)
    if bad:
        raise ValueError(f"audit details must not carry content or identifiers: {sorted(bad)}")
    return canonical_json(dict(details))


def _lock_head(session: Session) -> Frontier:
    """Lock the tree head for the rest of the transaction and return its frontier."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        # A no-op write makes pysqlite BEGIN and take the write lock before we read the head.
        session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(size=AuditHead.size))
    query = select(AuditHead.size, AuditHead.frontier).where(AuditHead.id == HEAD_ID).with_for_update()
    row = session.execute(query).first()
    if row is None:
        _create_head(session, dialect)
        row = session.execute(query).one()
    return Frontier.from_bytes(row.size, row.frontier)


def _create_head(session: Session, dialect: str) -> None:
    """Create the head row once (concurrent creators do not collide), from any existing records."""
    frontier = Frontier()
    nodes: list[dict[str, Any]] = []
    for (leaf,) in session.execute(select(AuditRecord.leaf_hash).order_by(AuditRecord.seq)):
        nodes.extend(_stored_nodes(frontier.append(leaf)))
    values = {
        "id": HEAD_ID,
        "size": frontier.size,
        "frontier": frontier.to_bytes(),
        "root": frontier.root(),
        "updated_at": utcnow(),
    }
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = session.execute(dialect_insert(AuditHead).values(**values).on_conflict_do_nothing())
    if result.rowcount and nodes:  # the node cache may survive from before; keep what is there
        session.execute(dialect_insert(AuditNode).on_conflict_do_nothing(), nodes)


def _stored_nodes(formed: list[tuple[int, int, bytes]]) -> list[dict[str, Any]]:
    return [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in formed if lv % NODE_STRIDE == 0]


def _save_head(session: Session, frontier: Frontier, nodes: list[dict[str, Any]]) -> None:
    if nodes:
        session.execute(insert(AuditNode), nodes)
    session.execute(
        update(AuditHead)
        .where(AuditHead.id == HEAD_ID)
        .values(size=frontier.size, frontier=frontier.to_bytes(), root=frontier.root(), updated_at=utcnow())
    )


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    outcome: str = "ok",
    ip: str | None = None,
    details: dict[str, Any] | None = None,
    monitor: bool = True,
) -> AuditRecord:
    """Append one event to the log inside `session`'s transaction (and run the monitoring rules)."""
    details_text = _check_details(details)
    frontier = _lock_head(session)
    at = clock()
    seq = frontier.size + 1
    leaf = leaf_hash(
        entry_bytes(
            seq, at.astimezone(UTC).strftime(TIME_FORMAT), actor, action, target, ip, outcome, details_text
        )
    )
    ctx = audit_context.context_for(session)
    rec = AuditRecord(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        target=target,
        ip=ip,
        outcome=outcome,
        details=details_text,
        leaf_hash=leaf,
        mac=ctx.keys.mac(leaf) if ctx else None,
    )
    session.add(rec)
    session.flush()
    _save_head(session, frontier, _stored_nodes(frontier.append(leaf)))
    audit_context.note_appended(session)
    if monitor:
        from earshot.audit.monitoring import check_event

        check_event(session, rec)
    return rec


def record_many(session: Session, events: Iterable[Event], *, monitor: bool = True) -> int:
    """Append many events in one go (one head lock, batched inserts); returns how many."""
    frontier = _lock_head(session)
    ctx = audit_context.context_for(session)
    rows: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    at = clock()
    at_text = at.astimezone(UTC).strftime(TIME_FORMAT)
    for ev in events:
        details_text = _check_details(ev.details)
        seq = frontier.size + 1
        leaf = leaf_hash(
            entry_bytes(seq, at_text, ev.actor, ev.action, ev.target, ev.ip, ev.outcome, details_text)
        )
        rows.append(
            {
                "seq": seq,
                "at": at,
                "actor": ev.actor,
                "action": ev.action,
                "target": ev.target,
                "ip": ev.ip,
                "outcome": ev.outcome,
                "details": details_text,
                "leaf_hash": leaf,
                "mac": ctx.keys.mac(leaf) if ctx else None,
            }
        )
        nodes.extend(_stored_nodes(frontier.append(leaf)))
    if not rows:
        return 0
    session.execute(insert(AuditRecord), rows)
    _save_head(session, frontier, nodes)
    audit_context.note_appended(session, len(rows))
    if monitor:
        from earshot.audit.monitoring import check_event

        for row in rows:
            check_event(session, AuditRecord(**row))
    return len(rows)


def head(session: Session) -> tuple[int, bytes]:
    """The current (committed or own-transaction) tree size and root, without locking."""
    row = session.execute(select(AuditHead.size, AuditHead.root).where(AuditHead.id == HEAD_ID)).first()
    if row is None:
        return 0, EMPTY_ROOT
    return int(row.size), bytes(row.root)


def parse_time(value: str) -> datetime:
    """Parse an ISO 8601 time; naive values are taken as UTC."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
