"""Per-deployment audit wiring: keys, the checkpoint file, and the interval checkpointer.

`record()` only receives a SQLAlchemy session, so the deployment registers its engine here once
(`install(deployment)`, called from `Deployment.open`). Sessions bound to that engine then get
per-record MACs, and a commit that appended records may trigger a checkpoint (every N records or
T seconds, whichever comes first) in its own transaction, after the caller's commit.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from earshot.audit.signing import AuditKeys, audit_keys

if TYPE_CHECKING:
    from earshot.deployment import Deployment

log = logging.getLogger("earshot.audit")

APPENDED_KEY = "earshot.audit.appended"
QUEUED_KEY = "earshot.audit.queued"
SEQUENCER_KEY = "earshot.audit.sequencer"
SEQUENCER_IDLE_S = 1.0  # the background sequencer also looks for leftovers this often
DEFAULT_CHECKPOINT_EVERY = 1000
DEFAULT_CHECKPOINT_SECONDS = 60.0


def checkpoint_file_for(settings: object) -> Path:
    """Where checkpoints are appended: `audit_checkpoint_file` or data_dir/audit/checkpoints.log."""
    configured = getattr(settings, "audit_checkpoint_file", None)
    if configured:
        return Path(configured)
    return Path(settings.data_dir) / "audit" / "checkpoints.log"  # type: ignore[attr-defined]


@dataclass
class AuditContext:
    """What the audit log needs from a deployment, plus the interval checkpointer's counters."""

    deployment: Deployment
    keys: AuditKeys
    checkpoint_file: Path
    every_records: int = DEFAULT_CHECKPOINT_EVERY
    every_seconds: float = DEFAULT_CHECKPOINT_SECONDS
    pending: int = 0
    last_checkpoint: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards the counters only
    # Held while a checkpoint is being signed and stored; committers never wait for it.
    checkpointing: threading.RLock = field(default_factory=threading.RLock)
    monitor_policy: object | None = None  # monitoring.MonitorPolicy, built on first use
    # PostgreSQL: who moves committed pending events into the tree. Inline: the committing thread,
    # right after its commit (the default: tests, one-off commands; the record is in the tree when
    # the transaction's `with` block ends). Server and worker processes switch to a background
    # `Sequencer` woken by each commit (`use_background_sequencer`), so a request never waits.
    inline_sequencing: bool = True
    sequencer: Sequencer | None = None

    def due(self) -> bool:
        if self.pending <= 0:
            return False
        return (
            self.pending >= self.every_records
            or time.monotonic() - self.last_checkpoint >= self.every_seconds
        )


_contexts: weakref.WeakKeyDictionary[Engine, AuditContext] = weakref.WeakKeyDictionary()


def install(deployment: Deployment) -> AuditContext:
    """Register `deployment` so that audit records written through its engine are MACed and
    checkpointed at the configured interval. Idempotent."""
    engine = deployment.db.engine
    existing = _contexts.get(engine)
    if existing is not None:
        return existing
    settings = deployment.settings
    ctx = AuditContext(
        deployment=deployment,
        keys=audit_keys(deployment.keys),
        checkpoint_file=checkpoint_file_for(settings),
        every_records=int(getattr(settings, "audit_checkpoint_every", DEFAULT_CHECKPOINT_EVERY)),
        every_seconds=float(getattr(settings, "audit_checkpoint_seconds", DEFAULT_CHECKPOINT_SECONDS)),
    )
    _contexts[engine] = ctx
    return ctx


def context_for(session: Session) -> AuditContext | None:
    """The audit context of the engine `session` is bound to, if installed."""
    try:
        bind = session.get_bind()
    except Exception:  # noqa: BLE001 - an unbound session has no context
        return None
    engine = bind if isinstance(bind, Engine) else getattr(bind, "engine", None)
    return _contexts.get(engine) if engine is not None else None


def note_appended(session: Session, count: int = 1) -> None:
    """Called by `record`: remember that this transaction appended records."""
    session.info[APPENDED_KEY] = session.info.get(APPENDED_KEY, 0) + count


def note_queued(session: Session, count: int = 1) -> None:
    """Called by `record` on PostgreSQL: this transaction queued events for the sequencer."""
    session.info[QUEUED_KEY] = session.info.get(QUEUED_KEY, 0) + count


class Sequencer(threading.Thread):
    """A daemon thread that sequences pending events as soon as a commit queued some.

    Requests only wake it (no waiting); commits that arrive while it works are taken in its next
    batch, so one head lock and one fsync serve many requests.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(name="earshot-audit-sequencer", daemon=True)
        self.engine = engine
        self.wake = threading.Event()
        self.stopped = False
        self.dirty = False  # woken by a commit since the last successful run

    def poke(self) -> None:
        """A commit queued events: sequence them now."""
        self.dirty = True
        self.wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Sequence what is pending one last time, then end (also run at interpreter exit)."""
        self.stopped = True
        self.wake.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    def run(self) -> None:
        while True:
            self.wake.wait(SEQUENCER_IDLE_S)
            self.wake.clear()
            if self.stopped and not self.dirty:
                return
            try:
                from earshot.audit.services import sequence_pending

                self.dirty = False
                sequence_pending(self.engine)
            except Exception as exc:  # noqa: BLE001 - the events stay pending; the next run takes them
                log.error("audit sequencing failed: %s", type(exc).__name__)
                if not self.stopped:
                    time.sleep(SEQUENCER_IDLE_S)
            if self.stopped:
                return


def _sequence_after_commit(session: Session) -> None:
    """Sequence this commit's pending events: inline, or by waking the background sequencer."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    ctx = _contexts.get(engine)
    if ctx is not None and not ctx.inline_sequencing:
        with ctx.lock:
            if ctx.sequencer is None or not ctx.sequencer.is_alive():
                ctx.sequencer = Sequencer(engine)
                ctx.sequencer.start()
                atexit.register(ctx.sequencer.stop)  # a one-off command leaves nothing pending
        ctx.sequencer.poke()
        return
    try:
        from earshot.audit.services import sequence_pending

        sequence_pending(engine)
    except Exception as exc:  # noqa: BLE001 - committed and pending: a later run sequences them
        log.error("audit sequencing failed: %s", type(exc).__name__)


def stop_sequencer(engine: Engine) -> None:
    """Sequence what is pending and end the engine's background sequencer, if one runs (before
    the engine is disposed: a live sequencer would open new connections on it every second)."""
    ctx = _contexts.get(engine)
    if ctx is None:
        return
    with ctx.lock:
        sequencer, ctx.sequencer = ctx.sequencer, None
        ctx.inline_sequencing = True
    if sequencer is not None:
        sequencer.stop()
        atexit.unregister(sequencer.stop)


def use_background_sequencer(deployment: Deployment) -> None:
    """Server and worker processes: commits wake a sequencer thread instead of sequencing inline."""
    install(deployment).inline_sequencing = False


def note_sequenced(engine: Engine, count: int) -> None:
    """Called by the sequencer after committing `count` records: interval checkpoint if due."""
    ctx = _contexts.get(engine)
    if ctx is not None:
        _count_and_checkpoint(ctx, count)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(QUEUED_KEY, 0):
        _sequence_after_commit(session)
    appended = session.info.pop(APPENDED_KEY, 0)
    if not appended:
        return
    ctx = context_for(session)
    if ctx is not None:
        _count_and_checkpoint(ctx, appended)


def _count_and_checkpoint(ctx: AuditContext, appended: int) -> None:
    """Count records added to the tree; sign a checkpoint when the interval has passed."""
    with ctx.lock:
        ctx.pending += appended
        if not ctx.due():
            return
    # One committer signs; the others carry on (the checkpoint in progress, or the next one, covers
    # their records) instead of queueing behind its file fsync and database commit.
    if not ctx.checkpointing.acquire(blocking=False):
        return
    try:
        from earshot.audit.checkpoints import create_checkpoint

        create_checkpoint(ctx.deployment)
    except Exception as exc:  # noqa: BLE001 - the action is committed; a later checkpoint covers it
        log.error("interval checkpoint failed: %s", type(exc).__name__)
    finally:
        ctx.checkpointing.release()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(APPENDED_KEY, None)
    session.info.pop(QUEUED_KEY, None)
