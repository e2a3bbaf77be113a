"""Many reviewers at once: no double lease, no unlinkability violation, counters consistent.

Threads share one deployment (PostgreSQL: row locks and SKIP LOCKED; SQLite: serialised writes).
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

from sqlalchemy import func, select

from earshot.review import assignment as assign
from earshot.review import simulation
from earshot.review.models import Assignment
from earshot.review.policy import ReviewPolicy


def _run_reviewers(dep, reviewers, rounds, policy, barrier_wait=True):
    errors: list[BaseException] = []
    taken: list[tuple[str, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(reviewers))

    def work(reviewer: str, seed: int) -> None:
        rng = random.Random(seed)
        try:
            if barrier_wait:
                barrier.wait(timeout=60)
            for _ in range(rounds):
                with dep.db.session() as s:
                    a = assign.next_assignment(s, dep, reviewer, policy=policy)
                    if a is None:
                        continue
                    aid, sid = a.id, a.snippet_id
                with lock:
                    taken.append((reviewer, aid))
                with dep.db.session() as s:
                    now = simulation.utcnow()
                    roll = rng.random()
                    if roll < 0.7:
                        simulation.complete(s, reviewer, aid, sid, now)
                    elif roll < 0.9:
                        simulation.release(s, reviewer, aid, sid, now)
                    # else: keep holding the lease (the next request returns the same one)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r, i)) for i, r in enumerate(reviewers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return errors, taken


def test_many_simultaneous_reviewers(deployment):
    pg = deployment.db.engine.dialect.name == "postgresql"
    n_reviewers, rounds = (32, 12) if pg else (8, 8)
    policy = ReviewPolicy(gold_rate=0.0)
    with deployment.db.session() as s:
        # a small pool, so that reviewers compete for the same snippets, customers and recordings
        simulation.bulk_pool(s, customers=40, recordings_per=2, snippets_per=3, graders=2, seed=7)
        reviewers = simulation.bulk_reviewers(s, n_reviewers, seed=7)
    errors, taken = _run_reviewers(deployment, reviewers, rounds, policy)
    assert not errors, errors[:3]
    assert len(taken) >= n_reviewers  # everyone got work
    with deployment.db.session() as s:
        v = simulation.check(s, policy.customer_window)
        assert v.total == 0, v
        assert s.scalar(select(func.count()).select_from(Assignment)) == len({a for _, a in taken})


def test_concurrent_requests_of_one_reviewer_get_one_lease(deployment):
    policy = ReviewPolicy(gold_rate=0.0)
    with deployment.db.session() as s:
        simulation.bulk_pool(s, customers=20, recordings_per=1, snippets_per=1, graders=1, seed=3)
        reviewer = simulation.bulk_reviewers(s, 1, seed=3)[0]
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        try:
            barrier.wait(timeout=60)
            with deployment.db.session() as s:
                results.append(assign.next_assignment(s, deployment, reviewer, policy=policy).id)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    assert len(set(results)) == 1  # eight simultaneous requests, one lease


def test_expiry_racing_many_reviewers(deployment):
    """Leases expiring while many reviewers ask: every slot is released exactly once."""
    policy = ReviewPolicy(gold_rate=0.0, lease_minutes=10)
    with deployment.db.session() as s:
        simulation.bulk_pool(s, customers=30, recordings_per=1, snippets_per=2, graders=2, seed=5)
        reviewers = simulation.bulk_reviewers(s, 12, seed=5)
    start = simulation.utcnow() - timedelta(minutes=30)
    for r in reviewers:  # everyone takes a lease in the past, which has expired by now
        with deployment.db.session() as s:
            assign.next_assignment(s, deployment, r, policy=policy, now=start)
    errors, _ = _run_reviewers(deployment, reviewers, 4, policy)
    assert not errors, errors[:3]
    with deployment.db.session() as s:
        assert simulation.check(s, policy.customer_window).total == 0


def test_sensitive_flags_racing_grades_and_skips(deployment, pool):
    """Reviewers flag, grade and skip the same snippets at once: no deadlock, no lease left on an
    escalated snippet, counters consistent."""
    from earshot.review import escalation, services
    from earshot.review.models import Snippet

    for _ in range(6):
        pool.snippet(pool.recording(pool.customer()), graders=4)
    reviewers = [pool.user() for _ in range(16)]
    policy = ReviewPolicy(gold_rate=0.0)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(reviewers))

    def work(reviewer: str, seed: int) -> None:
        rng = random.Random(seed)
        try:
            barrier.wait(timeout=60)
            for _ in range(3):
                with deployment.db.session() as s:
                    a = assign.next_assignment(s, deployment, reviewer, policy=policy)
                    if a is None:
                        return
                    aid, sid = a.id, a.snippet_id
                try:
                    with deployment.db.session() as s:
                        services.task_audio(s, deployment, reviewer, aid)
                    with deployment.db.session() as s:
                        roll = rng.random()
                        if roll < 0.3:
                            escalation.flag(s, deployment, reviewer, aid, "sensitive")
                        elif roll < 0.5:
                            escalation.skip(s, reviewer, aid, "other")
                        else:
                            simulation.complete(s, reviewer, aid, sid, simulation.utcnow())
                except services.NotFound:
                    pass  # withdrawn under us by someone's flag: expected
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r, i)) for i, r in enumerate(reviewers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:3]
    with deployment.db.session() as s:
        escalated = s.scalars(select(Snippet.id).where(Snippet.status == "escalated")).all()
        assert escalated  # some flags happened
        live = s.scalar(
            select(func.count())
            .select_from(Assignment)
            .where(Assignment.snippet_id.in_(escalated), Assignment.status == "active")
        )
        assert live == 0
        v = simulation.check(s, policy.customer_window)
        assert (
            v.same_recording == v.same_customer_in_window == v.several_active == v.same_snippet_twice == 0
        ), v
