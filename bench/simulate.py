"""Assignment simulation: 100 000 assignments through `next_assignment`, then every invariant checked.

    python bench/simulate.py                      # SQLite in a temporary directory (default)
    python bench/simulate.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/simulate.py --assignments 10000  # shorter

A simulated clock advances `--step-s` per request, so the month-long customer window opens and closes
during the run; leases are graded (75 %), skipped (10 %) or abandoned to expire (15 %). Prints the
counts, the violations (all must be 0) and the machine. Exit status 1 on any violation.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

from earshot.config import load_settings
from earshot.deployment import Deployment
from earshot.review import simulation
from earshot.review.policy import ReviewPolicy


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assignments", type=int, default=100_000)
    ap.add_argument("--reviewers", type=int, default=100)
    ap.add_argument("--customers", type=int, default=6000)
    ap.add_argument("--recordings-per", type=int, default=3)
    ap.add_argument("--snippets-per", type=int, default=3)
    ap.add_argument("--graders", type=int, default=2)
    ap.add_argument("--step-s", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()

    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}, Python {platform.python_version()}"
    )
    data_dir = tempfile.mkdtemp(prefix="earshot-sim-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    overrides = {"database_url": args.database_url} if args.database_url else {}
    dep = Deployment.open(load_settings(data_dir, **overrides))
    print(f"database: {dep.db.engine.dialect.name}")
    t0 = time.perf_counter()
    with dep.db.session() as s:
        n = simulation.bulk_pool(
            s,
            customers=args.customers,
            recordings_per=args.recordings_per,
            snippets_per=args.snippets_per,
            graders=args.graders,
            seed=args.seed,
        )
        reviewers = simulation.bulk_reviewers(s, args.reviewers, seed=args.seed)
    print(
        f"pool: {n} snippets, {args.customers} customers, {args.reviewers} reviewers "
        f"({time.perf_counter() - t0:.1f} s to load)"
    )
    policy = ReviewPolicy(gold_rate=0.0)
    t1 = time.perf_counter()
    result = simulation.simulate(
        dep,
        assignments=args.assignments,
        reviewers=reviewers,
        policy=policy,
        step_s=args.step_s,
        seed=args.seed,
        progress=lambda r: print(
            f"  ... {r.assignments} assignments, {time.perf_counter() - t1:.0f} s", flush=True
        ),
    )
    print(
        f"assignments: {result.assignments} (graded {result.completed}, skipped {result.skipped}, "
        f"abandoned to expire {result.abandoned}); empty answers {result.empty}, over quota {result.quota}"
    )
    print(
        f"simulated time: {result.simulated_days:.1f} days "
        f"(customer window {policy.customer_window_days:g} days)"
    )
    print(
        f"wall time: {result.seconds:.1f} s ({1000 * result.seconds / max(1, result.assignments):.2f} ms "
        "per assignment, including the lease's end and the audit record)"
    )
    print(f"violations: {result.violations.total} {result.violations}")
    dep.close()
    return 1 if result.violations.total else 0


if __name__ == "__main__":
    sys.exit(main())
