"""Review-queue fixtures: a deployment with a product (`pool`) and a lease whose audio counts as heard."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest

from earshot.intake.models import Product
from earshot.review import services
from earshot.review.policy import ReviewPolicy, set_policy
from tests.review.helpers import Pool


@pytest.fixture
def pool(deployment: Any) -> Pool:
    set_policy(deployment, ReviewPolicy(gold_rate=0.0))
    with deployment.db.session() as s:
        p = Product(name="assistant", token_hash=secrets.token_hex(32), graders_per_snippet=2)
        s.add(p)
        s.flush()
        pid = p.id
    return Pool(deployment, pid)


@pytest.fixture
def lease_and_play() -> Callable[..., str]:
    """Get a reviewer a lease, fetch its audio and backdate the delivery so it counts as heard."""
    from datetime import timedelta

    from sqlalchemy import update

    from earshot.review.models import Assignment

    def run(pool: Pool, reviewer: str) -> str:
        dep = pool.deployment
        with dep.db.session() as s:
            a = services.next_assignment(s, dep, reviewer)
            assert a is not None
            aid = a.id
        with dep.db.session() as s:
            services.task_audio(s, dep, reviewer, aid)
        with dep.db.session() as s:
            row = s.get(Assignment, aid)
            s.execute(
                update(Assignment)
                .where(Assignment.id == aid)
                .values(audio_first_at=row.audio_first_at - timedelta(seconds=30))
            )
        with dep.db.session() as s:
            services.mark_played(s, dep, reviewer, aid)
        return aid

    return run
