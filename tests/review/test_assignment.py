"""Assignment: random, unlinkable, leased, bounded by quotas; attacker-side checks included."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from earshot.database import utcnow
from earshot.review import services
from earshot.review.models import Assignment, Snippet
from earshot.review.policy import ReviewPolicy, set_policy


def _take(pool, reviewer, now=None):
    with pool.deployment.db.session() as s:
        a = services.next_assignment(s, pool.deployment, reviewer, now=now)
        return None if a is None else (a.id, a.snippet_id, a.recording_id, a.customer_id)


def _finish(pool, reviewer, aid, status="skipped"):
    with pool.deployment.db.session() as s:
        services.claim(s, reviewer, aid, status)
        a = s.get(Assignment, aid)
        services.expire_leases  # noqa: B018 - keep import used
        from earshot.review.assignment import release_slot

        release_slot(s, a.snippet_id)


def test_never_two_snippets_of_one_recording(pool):
    c = pool.customer()
    r = pool.recording(c)
    for _ in range(3):
        pool.snippet(r)
    reviewer = pool.user()
    first = _take(pool, reviewer)
    assert first is not None
    _finish(pool, reviewer, first[0])
    assert _take(pool, reviewer) is None  # the other two snippets share the recording


def test_customer_window(pool):
    set_policy(pool.deployment, ReviewPolicy(gold_rate=0.0, customer_window_days=30))
    c = pool.customer()
    pool.snippet(pool.recording(c))
    pool.snippet(pool.recording(c))
    reviewer = pool.user()
    first = _take(pool, reviewer)
    _finish(pool, reviewer, first[0])
    assert _take(pool, reviewer) is None
    # after the window the same customer may come back (a different recording)
    later = utcnow() + timedelta(days=31)
    second = _take(pool, reviewer, now=later)
    assert second is not None and second[2] != first[2] and second[3] == first[3]


def test_one_active_lease_and_it_is_returned_again(pool):
    pool.fill(3)
    reviewer = pool.user()
    a = _take(pool, reviewer)
    assert _take(pool, reviewer) == a


def test_lease_expires_and_returns_slot(pool):
    set_policy(pool.deployment, ReviewPolicy(gold_rate=0.0, lease_minutes=5))
    pool.fill(1, graders=1)
    alice, bob = pool.user(), pool.user()
    a = _take(pool, alice)
    assert _take(pool, bob) is None  # the only slot is leased
    later = utcnow() + timedelta(minutes=6)
    b = _take(pool, bob, now=later)
    assert b is not None and b[1] == a[1]
    with pool.deployment.db.session() as s:
        assert s.get(Assignment, a[0]).status == "expired"
        assert s.get(Snippet, a[1]).in_flight == 1
    # the expired lease is of no use to its former holder
    with pool.deployment.db.session() as s, pytest.raises(services.NotFound):
        services.task_view(s, pool.deployment, alice, a[0])


def test_overlap_two_graders_distinct_reviewers(pool):
    sid = pool.fill(1, graders=2)[0]
    a, b, c = pool.user(), pool.user(), pool.user()
    ta, tb = _take(pool, a), _take(pool, b)
    assert ta[1] == tb[1] == sid and ta[0] != tb[0]
    assert _take(pool, c) is None


def test_hourly_and_shift_quota(pool):
    pool.fill(6, graders=1)
    reviewer = pool.user()
    set_policy(pool.deployment, ReviewPolicy(gold_rate=0.0, quota_per_hour=2, quota_per_shift=3))
    now = utcnow()
    for _ in range(2):
        t = _take(pool, reviewer, now=now)
        _finish(pool, reviewer, t[0])
    with pool.deployment.db.session() as s, pytest.raises(services.QuotaReached) as exc:
        services.next_assignment(s, pool.deployment, reviewer, now=now)
    assert exc.value.which == "hourly"
    t = _take(pool, reviewer, now=now + timedelta(minutes=61))
    _finish(pool, reviewer, t[0])
    with pool.deployment.db.session() as s, pytest.raises(services.QuotaReached) as exc:
        services.next_assignment(s, pool.deployment, reviewer, now=now + timedelta(minutes=122))
    assert exc.value.which == "shift"


def test_random_order(pool):
    pool.fill(30, graders=1)
    orders = []
    for _ in range(2):
        reviewer = pool.user()
        seen = []
        while (t := _take(pool, reviewer)) is not None:
            seen.append(t[1])
            _finish(pool, reviewer, t[0])
        orders.append(seen)
    assert len(orders[0]) == 30 and set(orders[0]) == set(orders[1])
    assert orders[0] != orders[1]  # 1 in 30! to be equal by chance


def test_other_reviewers_lease_is_not_reachable(pool):
    pool.fill(2)
    alice, mallory = pool.user(), pool.user()
    a = _take(pool, alice)
    dep = pool.deployment
    with dep.db.session() as s:
        for call in (
            lambda: services.task_view(s, dep, mallory, a[0]),
            lambda: services.task_audio(s, dep, mallory, a[0]),
            lambda: services.mark_played(s, dep, mallory, a[0]),
            lambda: services.submit_grade(s, dep, mallory, a[0], transcript="x", accuracy=3),
        ):
            with pytest.raises(services.NotFound):
                call()


def test_exclusions_are_index_lookups(pool):
    """The per-reviewer exclusion table, not the assignment history, decides eligibility."""
    pool.fill(2)
    reviewer = pool.user()
    a = _take(pool, reviewer)
    with pool.deployment.db.session() as s:
        from earshot.review.models import ReviewerExclusion

        rows = s.scalars(select(ReviewerExclusion).where(ReviewerExclusion.reviewer_id == reviewer)).all()
        assert {(r.scope, r.key) for r in rows} == {("r", a[2]), ("c", a[3])}


def test_canary_snippet_is_never_assigned(pool):
    """A canary (synthetic, fake personal data) is out of every queue; requesting it is the alarm."""
    from earshot.audit import monitoring

    canary, ordinary = pool.fill(customers=2, graders=1)
    with pool.deployment.db.session() as s:
        monitoring.register_canary(s, canary, label="fake card number")
        assert s.get(Snippet, canary).status == "canary"
    taken = [_take(pool, pool.user()) for _ in range(3)]
    snippet_ids = {t[1] for t in taken if t is not None}
    assert snippet_ids == {ordinary}
