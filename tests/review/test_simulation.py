"""A reduced run of the assignment simulation (the full 100 000-assignment run is bench/simulate.py)."""

from __future__ import annotations

from sqlalchemy import select

from earshot.review import simulation
from earshot.review.models import Assignment
from earshot.review.policy import ReviewPolicy


def test_simulated_six_weeks_have_zero_violations(deployment):
    policy = ReviewPolicy(gold_rate=0.0, customer_window_days=30, quota_per_hour=3, quota_per_shift=10)
    with deployment.db.session() as s:
        simulation.bulk_pool(s, customers=150, recordings_per=2, snippets_per=3, graders=2, seed=11)
        reviewers = simulation.bulk_reviewers(s, 20, seed=11)
    result = simulation.simulate(
        deployment, assignments=800, reviewers=reviewers, policy=policy, step_s=5400.0, seed=11
    )
    assert result.assignments == 800, result
    assert result.violations.total == 0, result.violations
    assert result.simulated_days > policy.customer_window_days
    # the window did open again: some reviewer met a customer a second time, after 30 days
    with deployment.db.session() as s:
        seen: dict[tuple[str, str], object] = {}
        reunions = 0
        for reviewer, customer, at in s.execute(
            select(Assignment.reviewer_id, Assignment.customer_id, Assignment.assigned_at).order_by(
                Assignment.assigned_at
            )
        ):
            if (reviewer, customer) in seen:
                assert at - seen[(reviewer, customer)] >= policy.customer_window
                reunions += 1
            seen[(reviewer, customer)] = at
    assert reunions > 0
