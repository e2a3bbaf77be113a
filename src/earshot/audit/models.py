"""The audit log: append-only records, the Merkle tree head, signed checkpoints, and monitoring state.

`audit_records` are the leaves of an RFC 6962/9162 Merkle tree (leaf index = seq - 1). The single
`audit_head` row holds the tree's compact range (frontier), so each append costs O(log n) hashes and
appenders serialise on that one row (on PostgreSQL only the sequencer does: requests append to
`audit_pending`). `audit_nodes` caches interior hashes of complete subtrees at
every 4th level, so proofs need O(log n) small reads instead of re-hashing the log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from earshot.database import Base, UTCDateTime, utcnow

# 64-bit sequence numbers on PostgreSQL; plain INTEGER (the rowid alias) on SQLite.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class AuditRecord(Base):
    """One event. Pseudonymous ids only: never audio, transcript or customer ids."""

    __tablename__ = "audit_records"
    __table_args__ = (Index("ix_audit_records_actor_action_at", "actor", "action", "at"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(64), index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    # HMAC of the leaf hash under a server secret: a database-only attacker who rewrites a record
    # and recomputes its (public) leaf hash still cannot produce this, so `verify` names the record.
    mac: Mapped[bytes | None] = mapped_column(LargeBinary(16))


class AuditPending(Base):
    """An event committed with its action but not yet in the tree (PostgreSQL).

    Appenders insert here in their own transaction without touching the head; the sequencer
    (`services.sequence_pending`) moves committed rows into `audit_records` in batches, in
    (`grp`, `id`) order, so the records of one transaction stay adjacent. `grp` is the id of the
    transaction's first pending row (NULL on that row itself).
    """

    __tablename__ = "audit_pending"

    id: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    grp: Mapped[int | None] = mapped_column(SeqType)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[str] = mapped_column(Text, default="{}")
    monitor: Mapped[bool] = mapped_column(Boolean, default=True)


class AuditHead(Base):
    """The tree head (one row, id 1): size, compact range of complete subtrees, and root."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(SeqType, default=0)
    frontier: Mapped[bytes] = mapped_column(LargeBinary, default=b"")  # 32-byte hashes, largest first
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditNode(Base):
    """Hash of a complete subtree: 2**level leaves starting at leaf index idx * 2**level."""

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """A signed tree head. Also appended to a separate append-only file, so the database alone
    cannot rewrite history."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tree_size: Mapped[int] = mapped_column(SeqType, index=True)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


class Alert(Base):
    """Something a monitoring rule found unusual; leads and admins see and acknowledge it."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_rule_actor_created", "rule", "actor", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    severity: Mapped[str] = mapped_column(String(16))  # info | warning | critical
    rule: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(64))
    record_seq: Mapped[int | None] = mapped_column(SeqType)  # the audit record that triggered it
    details: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))


class AuditCanary(Base):
    """A canary snippet: synthetic, with fake personal data; no legitimate workflow delivers it."""

    __tablename__ = "audit_canaries"

    snippet_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditActorProfile(Base):
    """Per-actor monitoring settings: the working shift (local time in `tz`)."""

    __tablename__ = "audit_actor_profiles"

    actor: Mapped[str] = mapped_column(String(64), primary_key=True)
    shift: Mapped[str] = mapped_column(String(16))  # "HH:MM-HH:MM"; may wrap midnight
    tz: Mapped[str] = mapped_column(String(64), default="UTC")


class AuditKnownNetwork(Base):
    """Networks (IPv4 /24, IPv6 /48) an actor has been seen from."""

    __tablename__ = "audit_known_networks"

    actor: Mapped[str] = mapped_column(String(64), primary_key=True)
    network: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditActorSession(Base):
    """Sessions seen in the event stream (pseudonymous session and device references)."""

    __tablename__ = "audit_actor_sessions"

    actor: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    device: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
