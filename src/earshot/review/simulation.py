"""Large-scale checks of the assignment rules: bulk pools, a simulated working month, invariant checks.

Used by the test suite (reduced), `bench/simulate.py` (100 000 assignments) and `bench/serve.py`
(1 000 000 queued snippets). Rows are bulk-inserted with Core `executemany` (no audio is encrypted:
`audio_blob_id` stays empty unless the caller stores blobs), so a pool of a million snippets loads in
seconds on PostgreSQL.
"""

from __future__ import annotations

import random
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.orm import Session

from earshot.access.models import User
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.intake.models import Product, Recording
from earshot.privacy.models import Customer
from earshot.review import assignment as assign
from earshot.review.models import Assignment, Snippet
from earshot.review.policy import ReviewPolicy
from earshot.review.store import NotFound, claim, lock_snippet


def _ids(n: int, rng: random.Random) -> list[str]:
    return [uuid.UUID(int=rng.getrandbits(128), version=4).hex for _ in range(n)]


def bulk_pool(
    session: Session,
    *,
    customers: int,
    recordings_per: int,
    snippets_per: int,
    graders: int = 2,
    seed: int = 0,
    batch: int = 20_000,
    blob_id: str | None = None,
) -> int:
    """Insert a product, customers, recordings and queued snippets (no audio unless `blob_id`); returns the
    number of snippets."""
    rng = random.Random(seed)
    now = utcnow()
    product_id = uuid.uuid4().hex
    session.execute(
        insert(Product),
        [
            {
                "id": product_id,
                "name": f"bulk-{product_id[:8]}",
                "token_hash": secrets.token_hex(32),
                "active": True,
                "graders_per_snippet": graders,
                "created_at": now,
            }
        ],
    )
    customer_ids = _ids(customers, rng)
    for i in range(0, customers, batch):
        session.execute(
            insert(Customer),
            [
                {"id": c, "lookup_hash": secrets.token_hex(16), "consented": True, "created_at": now}
                for c in customer_ids[i : i + batch]
            ],
        )
    recordings = [(r, c) for c in customer_ids for r in _ids(recordings_per, rng)]
    for i in range(0, len(recordings), batch):
        session.execute(
            insert(Recording),
            [
                {
                    "id": r,
                    "customer_id": c,
                    "product_id": product_id,
                    "locale": "en-US",
                    "received_at": now,
                    "duration_s": 10.0,
                    "status": "processed",
                }
                for r, c in recordings[i : i + batch]
            ],
        )
    total = 0
    rows: list[dict[str, object]] = []
    for r, c in recordings:
        for pos in range(snippets_per):
            rows.append(
                {
                    "id": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
                    "recording_id": r,
                    "customer_id": c,
                    "product_id": product_id,
                    "position": pos,
                    "duration_s": 3.0,
                    "audio_blob_id": blob_id,
                    "transcript_enc": b"",
                    "pii_types": "",
                    "status": "queued",
                    "graders_needed": graders,
                    "grades_done": 0,
                    "in_flight": 0,
                    "rand": rng.random(),
                    "created_at": now,
                    "redactions": 0,
                }
            )
            if len(rows) >= batch:
                session.execute(insert(Snippet), rows)
                total += len(rows)
                rows = []
    if rows:
        session.execute(insert(Snippet), rows)
        total += len(rows)
    return total


def bulk_reviewers(session: Session, n: int, *, seed: int = 0) -> list[str]:
    """`n` active reviewer accounts (no credentials: for service-level simulations only)."""
    rng = random.Random(seed + 1)
    ids = _ids(n, rng)
    session.execute(
        insert(User),
        [
            {
                "id": u,
                "email": f"sim-{u[:12]}@example.org",
                "role": "reviewer",
                "status": "active",
                "failed_logins": 0,
                "created_at": utcnow(),
            }
            for u in ids
        ],
    )
    return ids


def complete(session: Session, reviewer_id: str, assignment_id: str, snippet_id: str, now: datetime) -> None:
    """Finish a lease as graded without a transcript (simulation only: the counters a grade moves)."""
    lock_snippet(session, snippet_id)  # before the lease, as a real grade does (lock order: store.py)
    claim(session, reviewer_id, assignment_id, "completed", now)
    session.execute(
        update(Snippet)
        .where(Snippet.id == snippet_id)
        .values(
            grades_done=Snippet.grades_done + 1,
            in_flight=Snippet.in_flight - 1,
            status=case(
                (
                    (Snippet.status == "queued") & (Snippet.grades_done + 1 >= Snippet.graders_needed),
                    "graded",
                ),
                else_=Snippet.status,
            ),
        )
        .execution_options(synchronize_session=False)
    )


def release(session: Session, reviewer_id: str, assignment_id: str, snippet_id: str, now: datetime) -> None:
    """Skip a lease (simulation): the slot goes back to the pool."""
    lock_snippet(session, snippet_id)
    claim(session, reviewer_id, assignment_id, "skipped", now, skip_reason="other")
    assign.release_slot(session, snippet_id)


@dataclass
class Violations:
    """Everything that must be zero."""

    same_recording: int = 0  # a reviewer got two snippets of one recording
    same_customer_in_window: int = 0  # ... or two of one customer within the window
    overfilled: int = 0  # more live (active or completed) leases on a snippet than graders needed
    same_snippet_twice: int = 0  # one reviewer holding one snippet twice
    several_active: int = 0  # a reviewer with more than one unexpired lease
    in_flight_mismatch: int = 0  # a snippet's in_flight counter differs from its active leases

    @property
    def total(self) -> int:
        return sum(self.__dict__.values())


def check(session: Session, window: timedelta, now: datetime | None = None) -> Violations:
    """Scan every assignment for violations of the rules (run after a simulation or a stress test)."""
    now = now or utcnow()
    v = Violations()
    v.same_recording = len(
        session.execute(
            select(Assignment.reviewer_id, Assignment.recording_id)
            .group_by(Assignment.reviewer_id, Assignment.recording_id)
            .having(func.count() > 1)
        ).all()
    )
    v.same_snippet_twice = len(
        session.execute(
            select(Assignment.reviewer_id, Assignment.snippet_id)
            .group_by(Assignment.reviewer_id, Assignment.snippet_id)
            .having(func.count() > 1)
        ).all()
    )
    last: dict[tuple[str, str], datetime] = {}
    for reviewer, customer, at in session.execute(
        select(Assignment.reviewer_id, Assignment.customer_id, Assignment.assigned_at).order_by(
            Assignment.reviewer_id, Assignment.customer_id, Assignment.assigned_at
        )
    ):
        key = (reviewer, customer)
        if key in last and at - last[key] < window:
            v.same_customer_in_window += 1
        last[key] = at
    live = dict(
        session.execute(
            select(Assignment.snippet_id, func.count())
            .where(Assignment.status.in_(("active", "completed")))
            .group_by(Assignment.snippet_id)
        ).all()
    )
    active = dict(
        session.execute(
            select(Assignment.snippet_id, func.count())
            .where(Assignment.status == "active")
            .group_by(Assignment.snippet_id)
        ).all()
    )
    for sid, needed, in_flight in session.execute(
        select(Snippet.id, Snippet.graders_needed, Snippet.in_flight)
    ):
        if live.get(sid, 0) > needed:
            v.overfilled += 1
        if in_flight != active.get(sid, 0):
            v.in_flight_mismatch += 1
    v.several_active = len(
        session.execute(
            select(Assignment.reviewer_id)
            .where(Assignment.status == "active", Assignment.lease_expires_at > now)
            .group_by(Assignment.reviewer_id)
            .having(func.count() > 1)
        ).all()
    )
    return v


@dataclass
class SimResult:
    assignments: int = 0
    completed: int = 0
    skipped: int = 0
    abandoned: int = 0  # left to expire
    empty: int = 0  # a reviewer asked and nothing was eligible
    quota: int = 0  # a reviewer asked over quota
    seconds: float = 0.0
    simulated_days: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    violations: Violations = field(default_factory=Violations)


def simulate(
    deployment: Deployment,
    *,
    assignments: int,
    reviewers: list[str],
    policy: ReviewPolicy,
    step_s: float = 30.0,
    seed: int = 0,
    start: datetime | None = None,
    progress: Callable[[SimResult], None] | None = None,
) -> SimResult:
    """Reviewers ask for work in random order on a simulated clock (`step_s` per request); each lease is
    graded (75 %), skipped (10 %) or abandoned to expire (15 %). Every request uses `next_assignment`."""
    rng = random.Random(seed)
    random.seed(seed)
    now = start or utcnow()
    result = SimResult()
    began = time.perf_counter()
    first = now
    pending: dict[str, str] = {}  # reviewer -> assignment the reviewer abandoned (will expire)
    while result.assignments < assignments:
        reviewer = rng.choice(reviewers)
        now += timedelta(seconds=step_s)
        with deployment.db.session() as s:
            try:
                a = assign.next_assignment(s, deployment, reviewer, policy=policy, now=now)
            except assign.QuotaReached:
                result.quota += 1
                continue
            if a is None:
                result.empty += 1
                if result.empty > assignments:
                    break
                continue
            if pending.get(reviewer) == a.id:
                continue  # still holding the abandoned lease: ask again later
            result.assignments += 1
            if progress is not None and result.assignments % 10_000 == 0:
                progress(result)
            roll = rng.random()
            try:
                if roll < 0.75:
                    complete(s, reviewer, a.id, a.snippet_id, now)
                    result.completed += 1
                elif roll < 0.85:
                    release(s, reviewer, a.id, a.snippet_id, now)
                    result.skipped += 1
                else:
                    pending[reviewer] = a.id
                    result.abandoned += 1
            except NotFound:
                result.outcomes["lost"] += 1
    with deployment.db.session() as s:
        result.violations = check(s, policy.customer_window, now)
    result.seconds = time.perf_counter() - began
    result.simulated_days = (now - first).total_seconds() / 86400
    return result
