"""Signed checkpoints (tree size, root, time, Ed25519 signature), in the database and in an
append-only file outside it.

The file is opened with O_APPEND for every write, under an exclusive flock, and fsynced, so an
attacker who controls only the database cannot rewrite the history it vouches for. In production
put it on a different volume or object-lock store (`audit_checkpoint_file`) and set the filesystem's
append-only attribute (`chattr +a`).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.audit import context as audit_context
from earshot.audit.models import AuditCheckpoint
from earshot.audit.services import head, parse_time
from earshot.audit.signing import format_time
from earshot.database import utcnow

if TYPE_CHECKING:
    from earshot.deployment import Deployment


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head as it travels (API, CLI, file)."""

    tree_size: int
    root_hash: bytes
    at: datetime
    key_id: str
    signature: bytes

    def to_json(self) -> dict[str, object]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp": format_time(self.at),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }

    def file_line(self) -> bytes:
        return (json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Checkpoint:
        return cls(
            tree_size=int(data["tree_size"]),  # type: ignore[arg-type]
            root_hash=bytes.fromhex(str(data["root_hash"])),
            at=parse_time(str(data["timestamp"])),
            key_id=str(data["key_id"]),
            signature=base64.b64decode(str(data["signature"]), validate=True),
        )

    @classmethod
    def from_row(cls, row: AuditCheckpoint) -> Checkpoint:
        return cls(row.tree_size, bytes(row.root_hash), row.at, row.key_id, bytes(row.signature))

    def identity(self) -> tuple[int, bytes, str, bytes]:
        """What must agree between the database and the file (time at microsecond precision)."""
        return (self.tree_size, self.root_hash, format_time(self.at), self.signature)


def append_to_file(path: Path, checkpoint: Checkpoint) -> None:
    """Append one checkpoint line: O_APPEND, exclusive lock, fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, checkpoint.file_line())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path: Path) -> tuple[list[Checkpoint], list[int]]:
    """Checkpoints in the file, and the line numbers (1-based) that do not parse."""
    if not path.exists():
        return [], []
    good: list[Checkpoint] = []
    bad: list[int] = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            good.append(Checkpoint.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            bad.append(number)
    return good, bad


def create_checkpoint(deployment: Deployment, *, force: bool = False) -> Checkpoint | None:
    """Sign the current tree head and store it in the database and the file.

    Returns None when nothing was appended since the newest checkpoint (unless `force`), or when
    the log is empty.
    """
    ctx = audit_context.install(deployment)
    with ctx.checkpointing:
        with ctx.lock:
            covered = ctx.pending  # commits counted so far; later ones may not be in this head
        with deployment.db.session() as session:
            size, root = head(session)
            latest = latest_checkpoint(session)
            if size == 0 or (not force and latest is not None and latest.tree_size >= size):
                _reset(ctx, covered)
                return None
            at = utcnow()
            cp = Checkpoint(size, root, at, ctx.keys.key_id, ctx.keys.sign_checkpoint(size, root, at))
            session.add(
                AuditCheckpoint(
                    tree_size=size, root_hash=root, at=at, key_id=cp.key_id, signature=cp.signature
                )
            )
            session.flush()
            # The file line is durable before the database commit: a crash in between leaves a
            # checkpoint that `verify` reports as missing from the database (never a silent gap).
            append_to_file(ctx.checkpoint_file, cp)
        _reset(ctx, covered)
        return cp


def _reset(ctx: audit_context.AuditContext, covered: int) -> None:
    """Restart the interval counters after a checkpoint that covered `covered` counted records."""
    with ctx.lock:
        ctx.pending = max(0, ctx.pending - covered)
        ctx.last_checkpoint = time.monotonic()


def maybe_checkpoint(deployment: Deployment) -> Checkpoint | None:
    """Scheduler hook: checkpoint if records were appended and the interval (records or seconds) passed.

    Cheap when nothing is due; call it every few seconds from a worker or the web process.
    """
    ctx = audit_context.install(deployment)
    with deployment.db.session() as session:
        size, _ = head(session)
        latest = latest_checkpoint(session)
    done = latest.tree_size if latest else 0
    if size <= done:
        return None
    age = (utcnow() - latest.at).total_seconds() if latest else float("inf")
    if size - done >= ctx.every_records or age >= ctx.every_seconds:
        return create_checkpoint(deployment)
    return None


def latest_checkpoint(session: Session) -> Checkpoint | None:
    """The newest checkpoint in the database."""
    row = session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc(), AuditCheckpoint.id.desc()).limit(1)
    ).first()
    return Checkpoint.from_row(row) if row else None


def list_checkpoints(session: Session) -> list[Checkpoint]:
    """Every checkpoint in the database, oldest first."""
    rows = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id))
    return [Checkpoint.from_row(r) for r in rows]


class CheckpointTimer:
    """A daemon thread calling `maybe_checkpoint` every `interval_s` (for `earshot serve`/`worker`).

    Interval checkpoints also happen after commits (see `context.install`); the timer covers a
    quiet log whose last records would otherwise wait for the next commit to be signed.
    """

    def __init__(self, deployment: Deployment, interval_s: float = 10.0) -> None:
        self.deployment = deployment
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-checkpoints", daemon=True)

    def start(self) -> CheckpointTimer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                maybe_checkpoint(self.deployment)
            except Exception as exc:  # noqa: BLE001 - keep trying; the next tick may succeed
                audit_context.log.error("scheduled checkpoint failed: %s", type(exc).__name__)
