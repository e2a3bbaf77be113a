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


def _two_leases_on_one_snippet(pool):
    """A fresh snippet with two grader slots and two reviewers holding a heard lease on it each."""
    from earshot.review import services

    dep = pool.deployment
    sid = pool.snippet(pool.recording(pool.customer()), graders=2)
    leases = []
    for _ in range(2):
        reviewer = pool.user()
        with dep.db.session() as s:
            a = assign.next_assignment(s, dep, reviewer, policy=ReviewPolicy(gold_rate=0.0))
            assert a is not None and a.snippet_id == sid
            leases.append((reviewer, a.id))
        with dep.db.session() as s:
            services.task_audio(s, dep, reviewer, a.id)
    return sid, leases


def _race(actions):
    """Run the callables at the same instant on their own threads; their results or exceptions."""
    barrier = threading.Barrier(len(actions))
    out: list[object] = [None] * len(actions)

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            out[i] = actions[i]()
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return out


def test_two_reviewers_flag_the_same_snippet_at_once(deployment, pool):
    """Both holders of one snippet act on it in the same instant: a sensitive flag against another
    sensitive flag, an accidental flag, a skip or a grade. No database deadlock (seen in CI: each
    flag held its own lease row and waited for the other's), every other outcome is NotFound, and
    no lease is left on the escalated snippet."""
    from earshot.review import escalation, services
    from earshot.review.models import Escalation

    dep = deployment
    seconds = {
        "sensitive": lambda s, r, a, sid: escalation.flag(s, dep, r, a, "sensitive"),
        "accidental": lambda s, r, a, sid: escalation.flag(s, dep, r, a, "accidental"),
        "skip": lambda s, r, a, sid: escalation.skip(s, r, a, "other"),
        "grade": lambda s, r, a, sid: simulation.complete(s, r, a, sid, simulation.utcnow()),
    }

    def in_session(fn, reviewer, aid, sid):
        def run():
            with dep.db.session() as s:
                return fn(s, reviewer, aid, sid)

        return run

    for round_ in range(16):
        name = list(seconds)[round_ % len(seconds)]
        sid, ((r1, a1), (r2, a2)) = _two_leases_on_one_snippet(pool)
        out = _race([in_session(seconds["sensitive"], r1, a1, sid), in_session(seconds[name], r2, a2, sid)])
        unexpected = [o for o in out if isinstance(o, BaseException) and not isinstance(o, services.NotFound)]
        assert not unexpected, (name, unexpected)
        with dep.db.session() as s:
            live = s.scalar(
                select(func.count())
                .select_from(Assignment)
                .where(Assignment.snippet_id == sid, Assignment.status == "active")
            )
            assert live == 0, name
            assert "sensitive" in s.scalars(select(Escalation.kind).where(Escalation.snippet_id == sid)).all()
