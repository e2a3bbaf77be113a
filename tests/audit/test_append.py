"""Appending: in the caller's transaction, contiguous under concurrency, checkpointed at an interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select, text

from earshot.audit import services
from earshot.audit.checkpoints import maybe_checkpoint, read_file
from earshot.audit.context import install
from earshot.audit.models import AuditCheckpoint, AuditRecord
from earshot.audit.verify import verify_deployment

from .conftest import fill


def seqs(dep) -> list[int]:
    with dep.db.engine.connect() as conn:
        return list(conn.execute(text("SELECT seq FROM audit_records ORDER BY seq")).scalars())


@contextmanager
def repeating_beside(step: Callable[[], object]) -> Iterator[list[BaseException]]:
    """Run `step` over and over in a thread while the block runs; yields the errors it raised."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            while not stop.is_set():
                step()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=loop)
    t.start()
    try:
        yield errors
    finally:
        stop.set()
        t.join()


def test_no_record_survives_a_rolled_back_action(dep):
    with pytest.raises(RuntimeError):
        with dep.db.session() as session:
            services.record(session, actor="user:a", action="task.assigned", target="s1", monitor=False)
            raise RuntimeError("the action failed")
    assert seqs(dep) == []
    sequenced = dep.db.engine.dialect.name == "postgresql"  # seq given after commit, by the sequencer
    with dep.db.session() as session:
        rec = services.record(session, actor="user:a", action="task.assigned", target="s2", monitor=False)
        assert rec.seq == (None if sequenced else 1)
        # a savepoint rolled back takes its record (and the head) with it
        nested = session.begin_nested()
        services.record(session, actor="user:a", action="task.graded", target="s2", monitor=False)
        nested.rollback()
        last = services.record(session, actor="user:a", action="task.graded", monitor=False)
        assert last.seq == (None if sequenced else 2)
    assert seqs(dep) == [1, 2]
    with dep.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT action, target FROM audit_records ORDER BY seq")).all()
        assert [tuple(r) for r in rows] == [("task.assigned", "s2"), ("task.graded", None)]
        if sequenced:
            assert conn.execute(text("SELECT count(*) FROM audit_pending")).scalar() == 0
    assert verify_deployment(dep).ok


def test_content_and_direct_identifiers_are_refused(dep):
    with dep.db.session() as session:
        for key in ("transcript", "audio", "email", "Customer_External_Id"):
            with pytest.raises(ValueError):
                services.record(session, actor="user:a", action="task.graded", details={key: "x"})


def test_batched_appends_are_contiguous_and_verify(dep):
    with dep.db.session() as session:
        services.record(session, actor="user:a", action="login.success", monitor=False)
        n = services.record_many(
            session,
            (
                services.Event(actor="pipeline", action="pipeline.processed", target=f"r{i}")
                for i in range(300)
            ),
        )
        assert n == 300
        services.record(session, actor="user:a", action="session.end", monitor=False)
    assert seqs(dep) == list(range(1, 303))
    assert verify_deployment(dep).ok


def test_checkpoints_are_written_every_n_records_after_commit(dep):
    ctx = install(dep)
    ctx.every_records = 10
    fill(dep, 35, per_tx=5)
    with dep.db.session() as session:
        sizes = list(session.scalars(select(AuditCheckpoint.tree_size).order_by(AuditCheckpoint.id)))
    assert sizes == [10, 20, 30]
    in_file, bad = read_file(ctx.checkpoint_file)
    assert [c.tree_size for c in in_file] == sizes and not bad
    assert verify_deployment(dep).ok


def test_the_scheduler_hook_checkpoints_when_the_interval_has_passed(dep):
    ctx = install(dep)
    fill(dep, 3)
    first = maybe_checkpoint(dep)  # no anchor at all yet: sign at once
    assert first is not None and first.tree_size == 3
    fill(dep, 3)
    assert maybe_checkpoint(dep) is None  # 3 more records, interval not reached
    ctx.every_seconds = 0
    cp = maybe_checkpoint(dep)
    assert cp is not None and cp.tree_size == 6
    assert maybe_checkpoint(dep) is None  # nothing new since


def test_concurrent_transactions_never_collide_or_fork(dep):
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            for i in range(30):
                with dep.db.session() as session:
                    services.record(
                        session,
                        actor=f"user:{name}",
                        action="task.assigned",
                        target=f"{name}{i}",
                        monitor=False,
                    )
                    services.record(
                        session,
                        actor=f"user:{name}",
                        action="audio.delivered",
                        target=f"{name}{i}",
                        monitor=False,
                    )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"t{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert seqs(dep) == list(range(1, 241))
    # each transaction's two records are adjacent: appenders were serialised on the head row
    with dep.db.session() as session:
        rows = session.execute(select(AuditRecord.seq, AuditRecord.actor).order_by(AuditRecord.seq)).all()
        assert all(rows[i].actor == rows[i + 1].actor for i in range(0, 240, 2))
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == 240
    assert verify_deployment(dep).ok


def test_a_second_appender_waits_for_the_first_only_on_sqlite(dep):
    """SQLite: an append takes the write lock, so a second appender waits for the first commit.
    PostgreSQL: appenders queue events without locking the head; the log takes them in commit order."""
    sequenced = dep.db.engine.dialect.name == "postgresql"
    first = dep.db.sessionmaker()
    services.record(first, actor="user:a", action="task.assigned", monitor=False)
    done = threading.Event()

    def second() -> None:
        with dep.db.session() as session:
            services.record(session, actor="user:b", action="task.assigned", monitor=False)
        done.set()

    t = threading.Thread(target=second)
    t.start()
    if sequenced:
        assert done.wait(10)  # not blocked by the open transaction
        assert seqs(dep) == [1]  # ... and already in the tree
    else:
        assert not done.wait(0.5)  # blocked behind the first transaction
    first.commit()
    first.close()
    t.join(10)
    assert done.is_set()
    assert seqs(dep) == [1, 2]
    with dep.db.engine.connect() as conn:
        actors = conn.execute(text("SELECT actor FROM audit_records ORDER BY seq")).scalars().all()
    assert actors == (["user:b", "user:a"] if sequenced else ["user:a", "user:b"])
    assert verify_deployment(dep).ok


def test_a_log_without_a_head_row_is_continued_not_restarted(dep):
    fill(dep, 9)
    with dep.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_head"))
    fill(dep, 3)
    assert seqs(dep) == list(range(1, 13))
    assert verify_deployment(dep).ok


def test_the_checkpoint_timer_signs_a_quiet_log(dep):
    import time

    from earshot.audit.checkpoints import CheckpointTimer

    install(dep).every_seconds = 0
    fill(dep, 4)
    timer = CheckpointTimer(dep, interval_s=0.05).start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with dep.db.session() as session:
                if session.scalar(select(func.max(AuditCheckpoint.tree_size))) == 4:
                    break
            time.sleep(0.05)
        else:
            raise AssertionError("no checkpoint was written")
    finally:
        timer.stop()


def test_verifying_while_others_append_and_checkpoint_raises_no_false_alarm(dep):
    install(dep).every_records = 7
    fill(dep, 5)
    with repeating_beside(lambda: fill(dep, 3, per_tx=3)) as errors:
        reports = [verify_deployment(dep) for _ in range(8)]
    assert not errors
    assert all(r.ok for r in reports), [r.problems for r in reports if not r.ok]
    final = verify_deployment(dep)
    assert final.ok and final.records >= 5


def test_a_checkpoint_always_in_flight_is_not_a_false_alarm(dep, monkeypatch):
    """A writer that always has one checkpoint in the file and not yet committed (its commit lands
    0.2 s after the file line, and the next line follows at once) never lets the file and the
    database agree; verify still passes, and a checkpoint really missing is still reported."""
    from earshot.audit import checkpoints

    real_append = checkpoints.append_to_file

    def slow_commit(path, cp):  # noqa: ANN001, ANN202
        real_append(path, cp)
        time.sleep(0.2)  # the database commit of create_checkpoint comes after this

    monkeypatch.setattr(checkpoints, "append_to_file", slow_commit)
    fill(dep, 5)
    checkpoints.create_checkpoint(dep)

    def write_and_checkpoint() -> None:
        fill(dep, 1)
        checkpoints.create_checkpoint(dep)

    with repeating_beside(write_and_checkpoint) as errors:
        time.sleep(0.1)
        reports = [verify_deployment(dep) for _ in range(3)]
    assert not errors
    assert all(r.ok for r in reports), [r.problems for r in reports if not r.ok]
    # from the attacker's side: a checkpoint deleted from the database is still found
    with dep.db.engine.begin() as conn:
        first = conn.execute(text("SELECT min(tree_size) FROM audit_checkpoints")).scalar_one()
        conn.execute(text("DELETE FROM audit_checkpoints WHERE tree_size = :n"), {"n": first})
    report = verify_deployment(dep)
    assert any("missing from the database" in p.message for p in report.problems)


def _pending(dep) -> int:
    with dep.db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM audit_pending")).scalar_one())


def test_the_background_sequencer_takes_concurrent_commits_into_one_verifiable_tree(dep):
    """Server mode on PostgreSQL: commits only wake the sequencer thread; it folds them in batches,
    each transaction's records adjacent, MACed, and the log verifies."""
    if dep.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite appends to the tree in the transaction itself")
    import time

    from earshot.audit.context import use_background_sequencer

    use_background_sequencer(dep)
    ctx = install(dep)
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            for i in range(20):
                with dep.db.session() as session:
                    for action in ("task.assigned", "audio.delivered", "task.graded"):
                        services.record(session, actor=f"user:{name}", action=action, target=f"{name}{i}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"t{k}",)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    deadline = time.monotonic() + 20
    while (_pending(dep) or len(seqs(dep)) < 360) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ctx.sequencer is not None and ctx.sequencer.is_alive()
    ctx.sequencer.stop()
    assert not ctx.sequencer.is_alive()
    assert _pending(dep) == 0 and seqs(dep) == list(range(1, 361))
    with dep.db.session() as session:
        rows = session.execute(
            select(AuditRecord.actor, AuditRecord.action, AuditRecord.target, AuditRecord.mac).order_by(
                AuditRecord.seq
            )
        ).all()
    assert all(r.mac is not None for r in rows)
    for i in range(0, 360, 3):  # a transaction's three records, adjacent and in append order
        assert [r.action for r in rows[i : i + 3]] == ["task.assigned", "audio.delivered", "task.graded"]
        assert len({(r.actor, r.target) for r in rows[i : i + 3]}) == 1
    assert verify_deployment(dep).ok


def test_events_left_pending_by_a_lost_process_are_sequenced_by_the_scheduler_job(dep):
    if dep.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite appends to the tree in the transaction itself")
    from earshot.scheduler import sequence_audit_events

    fill(dep, 3)
    with dep.db.engine.begin() as conn:  # committed, never sequenced (its process died)
        conn.execute(
            text(
                "INSERT INTO audit_pending (at, actor, action, outcome, details, monitor) "
                "VALUES (now(), 'user:x', 'task.assigned', 'ok', '{}', false)"
            )
        )
    assert _pending(dep) == 1 and seqs(dep) == [1, 2, 3]
    assert sequence_audit_events(dep) == 1
    assert _pending(dep) == 0 and seqs(dep) == [1, 2, 3, 4]
    assert verify_deployment(dep).ok
