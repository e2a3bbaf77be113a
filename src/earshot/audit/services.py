"""Append audit records in the caller's transaction: no action is committed without its record.

Growing the tree locks the single tree-head row, so records get consecutive sequence numbers and the
tree never forks. The head keeps the compact range of the tree, so an append costs O(log n) hashing
and a handful of rows whatever the size of the log.

PostgreSQL: a request appends its events to `audit_pending` (an INSERT, no shared lock: a row lock
held to commit would serialise every audited request of the deployment, fsync included), and the
sequencer (`sequence_pending`, run just after the commit and by a background job) moves committed
events into the tree in batches under the head lock. SQLite: the first write of a transaction takes
the database write lock anyway, so `record` appends to the tree at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _q
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, make_transient_to_detached

from earshot.audit import context as audit_context
from earshot.audit.merkle import EMPTY_ROOT, Frontier, leaf_hash
from earshot.audit.models import AuditHead, AuditNode, AuditPending, AuditRecord
from earshot.audit.scan import ENTRY_VERSION, TIME_FORMAT
from earshot.database import utcnow

HEAD_ID = 1
HEAD_CACHE_KEY = "earshot.audit.head"
NODE_STRIDE = 4  # interior hashes are stored for levels 4, 8, 12, ...
_ENTRY_PREFIX = f'["{ENTRY_VERSION}",'

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


def entry_text(
    seq: int, at: str, actor: str, action: str, target: str | None, ip: str | None, outcome: str, details: str
) -> str:
    """The entry a leaf hash covers, as text: a JSON array with the version tag and every column.

    Byte for byte `json.dumps([ENTRY_VERSION, seq, at, ...], separators=(",", ":"))` (ASCII, compact),
    built field by field because verification runs it a million times. `at` is the canonical UTC
    text (`signing.TIME_FORMAT`), `details` the stored canonical JSON text.
    """
    return (
        f"{_ENTRY_PREFIX}{int(seq)},{_q(at)},{_q(actor)},{_q(action)},"
        f"{'null' if target is None else _q(target)},{'null' if ip is None else _q(ip)},"
        f"{_q(outcome)},{_q(details)}]"
    )


def entry_bytes(
    seq: int, at: str, actor: str, action: str, target: str | None, ip: str | None, outcome: str, details: str
) -> bytes:
    """`entry_text` as bytes (ASCII)."""
    return entry_text(seq, at, actor, action, target, ip, outcome, details).encode()


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


_HEAD = AuditHead.__table__
_RECORDS = AuditRecord.__table__
_NODES = AuditNode.__table__
# Precompiled Core statements: the append path avoids ORM statement evaluation entirely.
_SELECT_HEAD_FOR_UPDATE = (
    select(_HEAD.c.size, _HEAD.c.frontier).where(_HEAD.c.id == HEAD_ID).with_for_update()
)
# SQLite: the first write of a transaction takes the database write lock, so the read comes with it.
_LOCK_HEAD_SQLITE = (
    _HEAD.update()
    .where(_HEAD.c.id == HEAD_ID)
    .values(size=_HEAD.c.size)
    .returning(_HEAD.c.size, _HEAD.c.frontier)
)
_UPDATE_HEAD = (
    _HEAD.update()
    .where(_HEAD.c.id == HEAD_ID)
    .values(size=bindparam("n"), frontier=bindparam("f"), root=bindparam("r"), updated_at=bindparam("u"))
)
_INSERT_RECORD = _RECORDS.insert()
_PENDING = AuditPending.__table__
_INSERT_PENDING = _PENDING.insert()
_INSERT_PENDING_FIRST = _PENDING.insert().returning(_PENDING.c.id)
_SELECT_PENDING = (
    select(_PENDING)
    .order_by(func.coalesce(_PENDING.c.grp, _PENDING.c.id), _PENDING.c.id)
    .limit(bindparam("n"))
)
_DELETE_PENDING = _PENDING.delete().where(_PENDING.c.id.in_(bindparam("ids", expanding=True)))
GROUP_KEY = "earshot.audit.group"
SEQUENCE_BATCH = 2000  # events per sequencer transaction
_INSERT_NODE = _NODES.insert()


def _lock_head(conn: Connection) -> Frontier:
    """Lock the tree head for the rest of the transaction and return its frontier."""
    query = _LOCK_HEAD_SQLITE if conn.dialect.name == "sqlite" else _SELECT_HEAD_FOR_UPDATE
    row = conn.execute(query).first()
    if row is None:
        _create_head(conn)
        row = conn.execute(query).one()
    return Frontier.from_bytes(row[0], row[1])


def _locked_head(session: Session, conn: Connection) -> Frontier:
    """The head frontier, locked once per (sub)transaction.

    The head row stays locked until the transaction ends, and every append writes it back, so later
    appends in the same (innermost) transaction reuse the frontier instead of reading the row again.
    A savepoint (begun, released or rolled back) changes the innermost transaction, which forces a
    fresh read; the frontier is kept only with a reference to the transaction it belongs to.
    """
    txn = session.get_nested_transaction() or session.get_transaction()
    cached = session.info.get(HEAD_CACHE_KEY)
    if cached is not None and cached[0] is txn and txn is not None and txn.is_active:
        return cached[1]
    frontier = _lock_head(conn)
    session.info[HEAD_CACHE_KEY] = (txn, frontier)
    return frontier


def _create_head(conn: Connection) -> None:
    """Create the head row once (concurrent creators do not collide), from any existing records."""
    frontier = Frontier()
    nodes: list[dict[str, Any]] = []
    for (leaf,) in conn.execute(select(_RECORDS.c.leaf_hash).order_by(_RECORDS.c.seq)):
        nodes.extend(_stored_nodes(frontier.append(leaf)))
    values = {
        "id": HEAD_ID,
        "size": frontier.size,
        "frontier": frontier.to_bytes(),
        "root": frontier.root(),
        "updated_at": utcnow(),
    }
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    result = conn.execute(dialect_insert(_HEAD).values(**values).on_conflict_do_nothing())
    if result.rowcount and nodes:  # the node cache may survive from before; keep what is there
        conn.execute(dialect_insert(_NODES).on_conflict_do_nothing(), nodes)


def _stored_nodes(formed: list[tuple[int, int, bytes]]) -> list[dict[str, Any]]:
    return [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in formed if lv % NODE_STRIDE == 0]


def _save_head(conn: Connection, frontier: Frontier, nodes: list[dict[str, Any]]) -> None:
    if nodes:
        conn.execute(_INSERT_NODE, nodes)
    conn.execute(
        _UPDATE_HEAD, {"n": frontier.size, "f": frontier.to_bytes(), "r": frontier.root(), "u": utcnow()}
    )


def _write(
    conn: Connection, rows: list[dict[str, Any]], frontier: Frontier, nodes: list[dict[str, Any]]
) -> None:
    """Insert the records and node hashes and write the head back."""
    conn.execute(_INSERT_RECORD, rows)
    _save_head(conn, frontier, nodes)


_EVENT_FIELDS = ("at", "actor", "action", "target", "ip", "outcome", "details")


def _leaf_row(
    frontier: Frontier, mac: Callable[[bytes], bytes] | None, event: Mapping[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Give `event` (at, actor, action, target, ip, outcome, details) the next `seq`, its leaf hash
    and MAC, and append the leaf to `frontier`: the record row and the node hashes to store."""
    seq = frontier.size + 1
    at_text = event["at"].astimezone(UTC).strftime(TIME_FORMAT)
    leaf = leaf_hash(
        entry_bytes(seq, at_text, event["actor"], event["action"], event["target"], event["ip"],
                    event["outcome"], event["details"])
    )  # fmt: skip
    row = {"seq": seq, **{k: event[k] for k in _EVENT_FIELDS}, "leaf_hash": leaf,
           "mac": mac(leaf) if mac else None}  # fmt: skip
    return row, _stored_nodes(frontier.append(leaf))


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
    """Append one event to the log inside `session`'s transaction (and run the monitoring rules).

    PostgreSQL: the event goes to `audit_pending` (one INSERT, no shared lock) and the sequencer
    gives it its `seq`, leaf hash and MAC and runs the rules just after the commit (see
    `sequence_pending`); the returned record has no `seq` yet. SQLite: the head is locked (the
    database write lock) and the record appended at once; the rules judge the event first, counting
    it themselves, and an alert they raise gets the record's `seq` once it is known.
    """
    conn = session.connection()
    event = {"at": clock(), "actor": actor, "action": action, "target": target, "ip": ip,
             "outcome": outcome, "details": _check_details(details)}  # fmt: skip
    if conn.dialect.name == "postgresql":
        _queue(session, conn, [{**event, "monitor": monitor}])
        return AuditRecord(**event)
    alerts = []
    if monitor:
        from earshot.audit.monitoring import check_event

        alerts = check_event(session, AuditRecord(**event), stored=False)
    ctx = audit_context.context_for(session)
    frontier = _locked_head(session, conn)
    values, nodes = _leaf_row(frontier, ctx.keys.mac if ctx else None, event)
    _write(conn, [values], frontier, nodes)
    # Hand the caller a persistent ORM object without a second INSERT.
    rec = AuditRecord(**values)
    make_transient_to_detached(rec)
    session.add(rec)
    audit_context.note_appended(session)
    for alert in alerts:
        alert.record_seq = values["seq"]  # written with the commit's flush
    return rec


def record_many(session: Session, events: Iterable[Event], *, monitor: bool = True) -> int:
    """Append many events in one go (one head lock, batched inserts); returns how many."""
    conn = session.connection()
    at = clock()
    batch = [
        {"at": at, "actor": ev.actor, "action": ev.action, "target": ev.target, "ip": ev.ip,
         "outcome": ev.outcome, "details": _check_details(ev.details)}
        for ev in events
    ]  # fmt: skip
    if conn.dialect.name == "postgresql":
        if batch:
            _queue(session, conn, [{**event, "monitor": monitor} for event in batch])
        return len(batch)
    frontier = _locked_head(session, conn)
    ctx = audit_context.context_for(session)
    mac = ctx.keys.mac if ctx else None
    rows: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    for event in batch:
        row, formed = _leaf_row(frontier, mac, event)
        rows.append(row)
        nodes.extend(formed)
    if not rows:
        return 0
    _write(conn, rows, frontier, nodes)
    audit_context.note_appended(session, len(rows))
    if monitor:
        from earshot.audit.monitoring import check_event

        for row in rows:
            check_event(session, AuditRecord(**row))
    return len(rows)


def _queue(session: Session, conn: Connection, events: list[dict[str, Any]]) -> None:
    """Insert events into `audit_pending` in the caller's transaction, as one group.

    The group is the id of the transaction's first pending row, so the sequencer keeps a
    transaction's records adjacent, in the order they were appended.
    """
    count = len(events)
    txn = session.get_transaction()
    cached = session.info.get(GROUP_KEY)
    group = cached[1] if cached is not None and cached[0] is txn else None
    if group is None:
        group = conn.execute(_INSERT_PENDING_FIRST, {**events[0], "grp": None}).scalar_one()
        session.info[GROUP_KEY] = (txn, group)
        events = events[1:]
    if events:
        conn.execute(_INSERT_PENDING, [{**ev, "grp": group} for ev in events])
    audit_context.note_queued(session, count)


def sequence_pending(engine: Engine, *, batch: int = SEQUENCE_BATCH) -> int:
    """Move committed pending events into the tree; returns how many (PostgreSQL; 0 elsewhere).

    Each batch is one transaction: lock the head, take the oldest pending groups, give each event
    its `seq`, leaf hash and MAC, insert the records and node hashes, write the head, delete the
    pending rows, run the monitoring rules on the new records (their alerts commit with them), and
    commit. Concurrent sequencers (threads or processes) queue on the head row; appenders never do.
    """
    if engine.dialect.name != "postgresql":
        return 0
    from earshot.audit.monitoring import check_event

    total = 0
    while True:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            session.info[audit_context.SEQUENCER_KEY] = True
            conn = session.connection()
            frontier = _lock_head(conn)
            rows = conn.execute(_SELECT_PENDING, {"n": batch}).all()
            if not rows:
                return total
            ctx = audit_context.context_for(session)
            mac = ctx.keys.mac if ctx else None
            records: list[dict[str, Any]] = []
            nodes: list[dict[str, Any]] = []
            for row in rows:
                values, formed = _leaf_row(frontier, mac, row._mapping)
                records.append(values)
                nodes.extend(formed)
            _write(conn, records, frontier, nodes)
            conn.execute(_DELETE_PENDING, {"ids": [row.id for row in rows]})
            for row, values in zip(rows, records, strict=True):
                if row.monitor:
                    check_event(session, AuditRecord(**values))
        total += len(rows)
        audit_context.note_sequenced(engine, len(rows))
        if len(rows) < batch:
            return total


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
