"""Audit log benchmark: appends per second, verification time for 1 000 000 records, proof size and time.

    .venv/bin/python bench/audit.py                 # SQLite (embedded default), 1 M records
    .venv/bin/python bench/audit.py --records 200000
    EARSHOT_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/audit.py           # also appends on PostgreSQL

Targets (issue 6): >= 5 000 appends/s, verify 1 M records in <= 10 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import secrets
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from earshot.audit import services
from earshot.audit.checkpoints import create_checkpoint
from earshot.audit.context import install
from earshot.audit.merkle import Frontier, leaf_hash
from earshot.audit.models import AuditHead
from earshot.audit.proofs import consistency_proof, inclusion_proof
from earshot.audit.signing import format_time
from earshot.audit.verify import verify_deployment, verify_log
from earshot.config import load_settings
from earshot.deployment import Deployment

APPEND_TARGET = 5000.0
VERIFY_TARGET_S = 10.0


def machine_info() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (
        f"machine: {cpu}; {os.cpu_count()} logical CPUs (affinity {len(os.sched_getaffinity(0))}); "
        f"load avg {tuple(round(x, 2) for x in load)}; Python {platform.python_version()}; "
        f"SQLite {sqlite3.sqlite_version}; {platform.platform()}"
    )


def open_deployment(root: Path, name: str, database_url: str | None) -> Deployment:
    overrides: dict[str, object] = {}
    if database_url:
        overrides["database_url"] = database_url
    dep = Deployment.open(load_settings(root / name, **overrides))
    ctx = install(dep)
    ctx.every_records = 10**12  # checkpoints are timed separately
    ctx.every_seconds = 10**12
    return dep


def event(i: int) -> services.Event:
    """A review workload: 50 reviewers, each at their own workstation, assign/deliver/grade cycles."""
    reviewer = i % 50
    return services.Event(
        actor=f"user:{reviewer:032x}",
        action=("task.assigned", "audio.delivered", "task.graded")[(i // 50) % 3],
        target=f"{i // 150:032x}{reviewer:02d}"[-32:],
        ip=f"10.0.{reviewer % 7}.{reviewer + 10}",
        details={"assignment": f"{i:032x}"},
    )


def bench_appends(dep: Deployment, label: str, *, n: int, per_tx: int, monitor: bool = False) -> float:
    start = time.perf_counter()
    done = 0
    while done < n:
        with dep.db.session() as session:
            for _ in range(min(per_tx, n - done)):
                ev = event(done)
                services.record(
                    session,
                    actor=ev.actor,
                    action=ev.action,
                    target=ev.target,
                    ip=ev.ip,
                    details=dict(ev.details or {}),
                    monitor=monitor,
                )
                done += 1
    rate = n / (time.perf_counter() - start)
    print(f"  {label:<58} {rate:>9.0f} appends/s")
    return rate


def bench_batch(dep: Deployment, label: str, *, n: int, batch: int) -> float:
    start = time.perf_counter()
    done = 0
    while done < n:
        with dep.db.session() as session:
            k = min(batch, n - done)
            services.record_many(session, (event(done + j) for j in range(k)), monitor=False)
            done += k
    rate = n / (time.perf_counter() - start)
    print(f"  {label:<58} {rate:>9.0f} appends/s")
    return rate


def bench_concurrent(dep: Deployment, label: str, *, threads: int, n_each: int, per_tx: int) -> float:
    def work(offset: int) -> None:
        done = 0
        while done < n_each:
            with dep.db.session() as session:
                for _ in range(min(per_tx, n_each - done)):
                    ev = event(offset + done)
                    services.record(
                        session, actor=ev.actor, action=ev.action, target=ev.target, ip=ev.ip, monitor=False
                    )
                    done += 1

    workers = [threading.Thread(target=work, args=(k * n_each,)) for k in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    rate = threads * n_each / (time.perf_counter() - start)
    print(f"  {label:<58} {rate:>9.0f} appends/s")
    return rate


def append_suite(root: Path, database_url: str | None, name: str, n: int) -> dict[str, float]:
    print(f"\nappends on {name} ({n} records each):")
    results = {}
    dep = open_deployment(root, f"append-{name}", database_url)
    results["record_100_per_tx"] = bench_appends(
        dep, "record(), 100 per transaction, no monitoring", n=n, per_tx=100
    )
    results["record_monitored"] = bench_appends(
        dep, "record(), 100 per transaction, monitoring rules on", n=n // 2, per_tx=100, monitor=True
    )
    results["record_1_per_tx"] = bench_appends(
        dep, "record(), 1 per transaction (commit-bound)", n=max(200, n // 20), per_tx=1
    )
    results["record_many"] = bench_batch(dep, "record_many(), batches of 1000", n=n, batch=1000)
    results["concurrent"] = bench_concurrent(
        dep, "record(), 4 threads, 10 per transaction", threads=4, n_each=n // 8, per_tx=10
    )
    start = time.perf_counter()
    create_checkpoint(dep)
    print(f"  {'checkpoint (sign + db + fsync file)':<58} {1000 * (time.perf_counter() - start):>9.1f} ms")
    report = verify_deployment(dep)
    print(f"  log after the append runs verifies: {report.ok} ({report.records} records)")
    dep.close()
    return results


def build_log(dep: Deployment, n: int, checkpoint_every: int) -> float:
    """n records through the real batched append path, a signed checkpoint every `checkpoint_every`."""
    start = time.perf_counter()
    done = 0
    batch = 10_000
    while done < n:
        with dep.db.session() as session:
            k = min(batch, n - done)
            services.record_many(session, (event(done + j) for j in range(k)), monitor=False)
            done += k
        if done % checkpoint_every == 0 or done == n:
            create_checkpoint(dep)
    return time.perf_counter() - start


def build_log_fast(dep: Deployment, n: int, checkpoint_every: int) -> float:
    """The same log as `build_log` (same entries, leaves, MACs, node cache and head), written with
    plain sqlite3 executemany for speed; `verify` would reject it if it differed from real appends."""
    keys = install(dep).keys
    path = dep.settings.data_dir / "earshot.db"
    start = time.perf_counter()
    with dep.db.session() as session:  # create the head row through the product
        services.record(session, actor="bench", action="config.changed", monitor=False)
    con = sqlite3.connect(path)
    with dep.db.session() as session:
        frontier = Frontier.from_bytes(*session.execute(select(AuditHead.size, AuditHead.frontier)).one())
    done = frontier.size
    batch = 50_000
    while done < n:
        at = datetime.now(UTC)
        at_db, at_text = at.strftime("%Y-%m-%d %H:%M:%S.%f"), format_time(at)
        rows, nodes = [], []
        for i in range(done, min(n, done + batch)):
            ev = event(i)
            details = services.canonical_json(ev.details)
            leaf = leaf_hash(
                services.entry_bytes(
                    i + 1, at_text, ev.actor, ev.action, ev.target, ev.ip, ev.outcome, details
                )
            )
            rows.append(
                (
                    i + 1,
                    at_db,
                    ev.actor,
                    ev.action,
                    ev.target,
                    ev.ip,
                    ev.outcome,
                    details,
                    leaf,
                    keys.mac(leaf),
                )
            )
            nodes.extend((lv, ix, h) for lv, ix, h in frontier.append(leaf) if lv % services.NODE_STRIDE == 0)
        con.executemany(
            "INSERT INTO audit_records (seq, at, actor, action, target, ip, outcome, details, "
            "leaf_hash, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        con.executemany("INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)
        con.execute(
            "UPDATE audit_head SET size = ?, frontier = ?, root = ?, updated_at = ? WHERE id = 1",
            (frontier.size, frontier.to_bytes(), frontier.root(), at_db),
        )
        con.commit()
        before, done = done, frontier.size
        if done // checkpoint_every > before // checkpoint_every or done == n:
            create_checkpoint(dep)
    con.close()
    return time.perf_counter() - start


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (independent of other load on the machine)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed_verify(dep: Deployment, workers: int | None) -> tuple[object, float, float]:
    ctx = install(dep)
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    with dep.db.session() as session:
        report = verify_log(session, ctx.keys, ctx.checkpoint_file, workers=workers)
    return report, time.perf_counter() - wall0, cpu_seconds() - cpu0


def proof_suite(dep: Deployment, size: int, samples: int = 200) -> None:
    rng = random.Random(6)
    with dep.db.session() as session:
        times, lengths = [], []
        for _ in range(samples):
            seq = rng.randint(1, size)
            t = time.perf_counter()
            proof = inclusion_proof(session, seq, size)
            times.append(time.perf_counter() - t)
            lengths.append(len(proof.path))
        print(
            f"  inclusion proof at size {size}: {statistics.mean(lengths):.1f} hashes "
            f"({32 * statistics.mean(lengths):.0f} bytes); median {1000 * statistics.median(times):.2f} ms, "
            f"max {1000 * max(times):.2f} ms ({samples} random leaves)"
        )
        times, lengths = [], []
        for _ in range(samples):
            first = rng.randint(1, size - 1)
            t = time.perf_counter()
            proof = consistency_proof(session, first, size)
            times.append(time.perf_counter() - t)
            lengths.append(len(proof.path))
        print(
            f"  consistency proof to size {size}: {statistics.mean(lengths):.1f} hashes "
            f"({32 * statistics.mean(lengths):.0f} bytes); median {1000 * statistics.median(times):.2f} ms, "
            f"max {1000 * max(times):.2f} ms ({samples} random old sizes)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000, help="size of the log to verify")
    parser.add_argument("--appends", type=int, default=20_000, help="records per append measurement")
    parser.add_argument(
        "--build",
        choices=("fast", "append"),
        default="fast",
        help="build the verification log with sqlite3 executemany (fast) or record_many (append)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("EARSHOT_TEST_POSTGRES_URL"),
        help="also measure appends on this PostgreSQL URL (a throw-away schema is used)",
    )
    args = parser.parse_args()
    print(machine_info())
    ok = True
    with tempfile.TemporaryDirectory(prefix="earshot-bench-audit-") as tmp:
        root = Path(tmp)
        sqlite_results = append_suite(root, None, "SQLite", args.appends)
        ok &= sqlite_results["record_100_per_tx"] >= APPEND_TARGET
        if args.postgres:
            url, drop = postgres_schema(args.postgres)
            try:
                pg = append_suite(root, url, "PostgreSQL", args.appends)
                ok &= pg["record_100_per_tx"] >= APPEND_TARGET
            finally:
                drop()

        print(f"\nverification of {args.records} records (SQLite file, {args.build} build):")
        dep = open_deployment(root, "verify", None)
        builder = build_log if args.build == "append" else build_log_fast
        build_s = builder(dep, args.records, checkpoint_every=100_000)
        size_mb = (dep.settings.data_dir / "earshot.db").stat().st_size / 1e6
        print(f"  built in {build_s:.1f} s, database {size_mb:.0f} MB")
        for workers, label in (
            (None, f"parallel ({min(os.cpu_count() or 1, 8)} processes)"),
            (1, "one process"),
        ):
            report, wall, cpu = timed_verify(dep, workers)
            print(f"  verify, {label}: {report.summary()}")
            print(
                f"    wall {wall:.2f} s ({report.records / wall:.0f} records/s), CPU {cpu:.2f} s "
                f"(all processes); target <= {VERIFY_TARGET_S:.0f} s wall for 1 M"
            )
            if workers is None:
                ok &= report.ok and (args.records < 1_000_000 or wall <= VERIFY_TARGET_S)
        print("\nproofs:")
        proof_suite(dep, report.records)
        dep.close()
    print(f"\ntargets met: {ok}")
    return 0 if ok else 1


def postgres_schema(base: str):  # noqa: ANN201
    import sqlalchemy as sa

    schema = "bench_audit_" + secrets.token_hex(4)
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", drop


if __name__ == "__main__":
    sys.exit(main())
