"""Serving benchmark: next-task and audio-delivery latency for 200 concurrent reviewers, 1 000 000 queued
snippets, PostgreSQL.

    python bench/serve.py                                  # defaults below
    python bench/serve.py --snippets 100000 --seconds 30   # quicker
    python bench/serve.py --think-s 0                      # saturation: no pause between requests

What is measured: the service calls the HTTP views make, under one thread per reviewer (not HTTP: no
uvicorn, no session-cookie check, no JSON). Per reviewer, a loop of
  next task   = vetting check + `services.assign_and_view` (the view's call: lock, quota, expiry sweep,
                random eligible snippet with FOR UPDATE SKIP LOCKED, exclusions, audit record, commit,
                then decrypt the masked transcript);
  audio       = `media.issue_media_url` + commit, then `media.redeem` (single-use token, decrypt the
                blob, watermark for this delivery, audit record) + commit;
  then a listening pause (`--listen-s`), `mark_played`, `submit_grade` (encrypts the transcript,
  consolidates the snippet when its last grader is done), and a pause (`--think-s`).
Latency is wall time per call including the wait for a pooled database connection; the table also gives
each call's mean CPU time in its own thread (Python: ORM, crypto, watermark) and SQL statements, which do
not depend on how loaded the machine is. `--levels 1,50,200` measures several concurrency levels on one
loaded pool (level 1 = service time without queueing).

The pool is bulk-loaded with COPY into a fresh schema (dropped afterwards unless --keep): customers,
their data keys, one real encrypted audio blob per customer (a 3 s WAV, shared by that customer's
snippets, in a temporary data dir), recordings, and snippets whose masked transcripts are really sealed
with the customer's key. Prints machine and database details first.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import sessionmaker

from earshot.access.models import User
from earshot.access.vetting import KINDS, record_vetting, vetting_ok
from earshot.audit import context as audit_context
from earshot.config import load_settings
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.review import media, services
from earshot.review.policy import ReviewPolicy, set_policy
from earshot.review.wav import encode_wav
from earshot.vault.services import BLOB_VERSION
from earshot.web.app import freeze_startup_heap

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def machine_info(engine: sa.Engine) -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    with engine.connect() as c:
        version = c.execute(sa.text("show server_version")).scalar()
        maxconn = c.execute(sa.text("show max_connections")).scalar()
        shared = c.execute(sa.text("show shared_buffers")).scalar()
    return (
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), {mem} RAM, "
        f"load average {os.getloadavg()[0]:.1f} at start\n"
        f"python {platform.python_version()}, SQLAlchemy {sa.__version__}; PostgreSQL {version} "
        f"(max_connections {maxconn}, shared_buffers {shared}) on the same machine"
    )


def _schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def load(dep: Deployment, args: argparse.Namespace) -> list[str]:
    """Bulk-load customers, keys, blobs, recordings and snippets; returns reviewer ids."""
    rng = random.Random(args.seed)
    now = utcnow()
    vault = dep.vault
    t0 = time.perf_counter()
    n_customers = args.customers
    per_customer = max(1, args.snippets // n_customers)
    recs_per = max(1, per_customer // args.snippets_per_recording)
    tone = (0.2 * np.sin(2 * np.pi * 180 * np.arange(int(16000 * args.snippet_s)) / 16000)).astype(np.float32)
    noise = np.random.default_rng(args.seed).normal(0, 0.02, tone.shape).astype(np.float32)
    wav = encode_wav(tone + noise)
    product_id = uuid.uuid4().hex
    customer_ids = [uuid.uuid4().hex for _ in range(n_customers)]
    deks: dict[str, bytes] = {}
    blobs: dict[str, str] = {}
    with dep.db.session() as s:
        s.execute(
            sa.text(
                "insert into products (id, name, token_hash, active, graders_per_snippet, created_at) "
                "values (:id, 'bench', :t, true, 2, now())"
            ),
            {"id": product_id, "t": secrets.token_hex(32)},
        )
    raw = dep.db.engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy("COPY customers (id, lookup_hash, consented, created_at) FROM STDIN") as cp:
            for c in customer_ids:
                cp.write_row((c, secrets.token_hex(16), True, now))
        raw.commit()
    finally:
        raw.close()
    for i in range(0, n_customers, 1000):  # data keys (wrapped by the KEK) and one audio blob per customer
        with dep.db.session() as s:
            for c in customer_ids[i : i + 1000]:
                deks[c] = vault._data_key(s, c, create=True)  # noqa: SLF001 - bulk load, same format
                blobs[c] = vault.put_blob(s, c, wav)
    print(
        f"  {n_customers} customers with keys and audio blobs ({len(wav)} B each): "
        f"{time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    t1 = time.perf_counter()
    raw = dep.db.engine.raw_connection()
    total = 0
    try:
        cur = raw.cursor()
        recordings = [(uuid.uuid4().hex, c) for c in customer_ids for _ in range(recs_per)]
        with cur.copy(
            "COPY recordings (id, customer_id, product_id, locale, received_at, duration_s, status) "
            "FROM STDIN"
        ) as cp:
            for r, c in recordings:
                cp.write_row((r, c, product_id, "en-US", now, 10.0, "processed"))
        text = b"turn on the kitchen lights and set a timer for ten minutes"
        with cur.copy(
            "COPY snippets (id, recording_id, customer_id, product_id, position, duration_s, audio_blob_id, "
            "transcript_enc, pii_types, status, graders_needed, grades_done, in_flight, rand, created_at, "
            "redactions) FROM STDIN"
        ) as cp:
            for r, c in recordings:
                aes = AESGCM(deks[c])
                for pos in range(args.snippets_per_recording):
                    if total >= args.snippets:
                        break
                    sid = uuid.uuid4().hex
                    nonce = secrets.token_bytes(12)
                    sealed = (
                        BLOB_VERSION
                        + nonce
                        + aes.encrypt(nonce, text, f"earshot|snippet:{sid}:text|{c}".encode())
                    )
                    cp.write_row(
                        (
                            sid,
                            r,
                            c,
                            product_id,
                            pos,
                            args.snippet_s,
                            blobs[c],
                            sealed,
                            "",
                            "queued",
                            2,
                            0,
                            0,
                            rng.random(),
                            now,
                            0,
                        )
                    )
                    total += 1
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    print(
        f"  {len(recordings)} recordings, {total} queued snippets (COPY): {time.perf_counter() - t1:.1f} s",
        flush=True,
    )
    reviewers = []
    with dep.db.session() as s:
        today = date.today()
        for i in range(args.reviewers):
            u = User(email=f"bench-{i}@example.org", role="reviewer", status="active")
            s.add(u)
            s.flush()
            for kind in KINDS:
                record_vetting(
                    s,
                    u.id,
                    kind,
                    completed_on=today,
                    expires_on=today + timedelta(days=365),
                    recorded_by="bench",
                )
            reviewers.append(u.id)
    return reviewers


def existing_reviewers(dep: Deployment, n: int) -> list[str]:
    """The reviewer ids a previous `load` created in a kept schema (bench-0, bench-1, ...)."""
    with dep.db.session() as s:
        rows = s.execute(
            sa.text("select id, email from users where email like 'bench-%@example.org'")
        ).all()
    by_index = {int(email.split("-", 1)[1].split("@", 1)[0]): uid for uid, email in rows}
    if len(by_index) < n:
        raise SystemExit(f"the kept schema has {len(by_index)} reviewers, {n} asked for")
    return [by_index[i] for i in range(n)]


_local = threading.local()


def count_statements(engine: sa.Engine) -> None:
    """Count SQL statements per thread (to report round trips per call)."""

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _count(*_args: object) -> None:
        _local.statements = getattr(_local, "statements", 0) + 1


class Probe:
    """Wall time, this thread's CPU time and SQL statements of one call."""

    def __init__(self, stats: Stats, name: str) -> None:
        self.stats, self.name = stats, name

    def __enter__(self) -> Probe:
        self.t, self.cpu, self.n = time.perf_counter(), time.thread_time(), getattr(_local, "statements", 0)
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.stats.add(
                self.name,
                time.perf_counter() - self.t,
                time.thread_time() - self.cpu,
                getattr(_local, "statements", 0) - self.n,
            )


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.statements: dict[str, list[int]] = defaultdict(list)
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.recording = False

    def add(self, name: str, seconds: float, cpu: float = 0.0, statements: int = 0) -> None:
        if self.recording:
            with self.lock:
                self.samples[name].append(seconds)
                self.cpu[name].append(cpu)
                self.statements[name].append(statements)

    def error(self, name: str) -> None:
        with self.lock:
            self.errors[name] += 1


class GcPauses:
    """Python garbage-collector pauses (they stop every thread) while the instance is active."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.durations.append(time.perf_counter() - self._started)

    def stop(self) -> None:
        gc.callbacks.remove(self._callback)

    def __str__(self) -> str:
        worst = 1000 * max(self.durations, default=0.0)
        total = 1000 * sum(self.durations)
        return f"gc: {len(self.durations)} collections, {total:.0f} ms, longest {worst:.1f} ms"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def reviewer_loop(
    dep: Deployment, reviewer: str, stats: Stats, stop: threading.Event, args: argparse.Namespace, seed: int
) -> None:
    rng = random.Random(seed)
    session_id = secrets.token_hex(32)  # stands for the reviewer's web session
    time.sleep(rng.random() * max(args.think_s, 0.5))  # stagger the start
    while not stop.is_set():
        try:
            with Probe(stats, "next_task"), dep.db.session() as s:
                ok, _ = vetting_ok(s, reviewer)
                view = services.assign_and_view(s, dep, reviewer) if ok else None
                aid = view.assignment_id if view is not None else None
            if aid is None:
                stats.error("empty")
                time.sleep(1)
                continue
            with Probe(stats, "audio_delivery"):
                with Probe(stats, "audio_url"), dep.db.session() as s:
                    url = media.issue_media_url(s, dep, session_id, reviewer, aid)
                with Probe(stats, "audio_fetch"), dep.db.session() as s:
                    audio = media.redeem(s, dep, url.rsplit("/", 1)[1], session_id, reviewer, ip="127.0.0.1")
            assert audio[:4] == b"RIFF"
            stop.wait(args.listen_s)
            if stop.is_set():
                break
            with Probe(stats, "played_and_grade"):
                with dep.db.session() as s:
                    services.mark_played(s, dep, reviewer, aid)
                with dep.db.session() as s:
                    services.submit_grade(
                        s,
                        dep,
                        reviewer,
                        aid,
                        transcript="turn on the kitchen lights",
                        accuracy=4,
                        intent_correct=True,
                    )
        except Exception as exc:  # noqa: BLE001 - counted and reported
            stats.error(type(exc).__name__)
            time.sleep(0.5)
        stop.wait(rng.uniform(0.5, 1.5) * args.think_s)


def configure(dep: Deployment, pool: int) -> None:
    """One engine for every reviewer thread of this process, sized like an app server's pool; the
    audit wiring follows it, with the background sequencer `earshot serve` uses."""
    dep.db.engine.dispose()
    dep.db.engine = sa.create_engine(dep.db.url, pool_size=pool, max_overflow=0, pool_timeout=60)
    dep.db.sessionmaker = sessionmaker(dep.db.engine, expire_on_commit=False)
    audit_context.install(dep)  # the audit wiring (MACs, sequencer, checkpoints) follows the engine
    audit_context.use_background_sequencer(dep)  # as `earshot serve` does at start-up
    count_statements(dep.db.engine)


def measure(
    dep: Deployment, reviewers: list[str], args: argparse.Namespace, offset: int = 0
) -> tuple[Stats, str]:
    """Reviewer threads in this process for warm-up + measured time: their stats and GC pauses."""
    stats = Stats()
    stop = threading.Event()
    threads = [
        threading.Thread(target=reviewer_loop, args=(dep, r, stats, stop, args, offset + i), daemon=True)
        for i, r in enumerate(reviewers)
    ]
    for t in threads:
        t.start()
    # Reviewers start staggered over the first think time: measure only once every one has started
    # (otherwise a level's first, cold calls fall into the measured period at random).
    time.sleep(max(args.warmup, args.think_s, 0.5) + 1.0)
    pauses = GcPauses()
    stats.recording = True
    time.sleep(args.seconds)
    stats.recording = False
    pauses.stop()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    return stats, str(pauses)


def _worker_process(
    args: argparse.Namespace, data_dir: str, url: str, reviewers: list[str], offset: int, out: Any
) -> None:
    """One server-like process (as `earshot serve --workers N` runs): its own deployment, engine
    and pool, a share of the reviewers; sends its samples back."""
    dep = Deployment.open(load_settings(data_dir, database_url=url))
    try:
        configure(dep, args.pool_per_process)
        if args.gc_freeze:
            freeze_startup_heap()
        stats, pauses = measure(dep, reviewers, args, offset)
        out.put(
            {"samples": dict(stats.samples), "cpu": dict(stats.cpu), "statements": dict(stats.statements),
             "errors": dict(stats.errors), "pauses": pauses}  # fmt: skip
        )
    finally:
        dep.close()  # also stops the audit sequencer


def run_level(dep: Deployment, reviewers: list[str], args: argparse.Namespace) -> bool:
    """Run `len(reviewers)` reviewers for warm-up + measured time, in --processes server-like
    processes (threads in each); print the table."""
    print(
        f"\n{len(reviewers)} concurrent reviewers in {args.processes} process(es): "
        f"warm-up {max(args.warmup, args.think_s, 0.5) + 1:g} s, measured {args.seconds:g} s, "
        f"listen {args.listen_s:g} s, think {args.think_s:g} s, "
        f"pool {args.pool_per_process if args.processes > 1 else args.pool} connections per process",
        flush=True,
    )
    load_start = os.getloadavg()[0]
    if args.processes <= 1:
        stats, pauses = measure(dep, reviewers, args)
        pause_lines = [pauses]
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        shares = [reviewers[k :: args.processes] for k in range(args.processes)]
        procs = [
            ctx.Process(
                target=_worker_process,
                args=(args, str(dep.settings.data_dir), dep.db.url, share, 10_000 * k, out),
            )
            for k, share in enumerate(shares)
            if share
        ]
        for proc in procs:
            proc.start()
        stats = Stats()
        pause_lines = []
        for _ in procs:
            part = out.get(timeout=max(args.warmup, args.think_s) + args.seconds + 300)
            for field in ("samples", "cpu", "statements"):
                for name, values in part[field].items():
                    getattr(stats, field)[name].extend(values)
            for name, n in part["errors"].items():
                stats.errors[name] += n
            pause_lines.append(part["pauses"])
        for proc in procs:
            proc.join(timeout=60)
    load_end = os.getloadavg()[0]
    print(f"load average during the run: {load_start:.1f} -> {load_end:.1f}; " + "; ".join(pause_lines))
    print(
        f"{'call':<18}{'count':>8}{'per s':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'cpu ms':>9}{'stmts':>7}"
    )
    for name in ("next_task", "audio_delivery", "audio_url", "audio_fetch", "played_and_grade"):
        v = stats.samples.get(name, [])
        if not v:
            continue
        print(
            f"{name:<18}{len(v):>8}{len(v) / args.seconds:>8.1f}{1000 * statistics.median(v):>9.1f}"
            f"{1000 * percentile(v, 90):>9.1f}{1000 * percentile(v, 99):>9.1f}{1000 * max(v):>9.1f}"
            f"{1000 * statistics.mean(stats.cpu[name]):>9.1f}{statistics.mean(stats.statements[name]):>7.1f}"
        )
    if stats.errors:
        print("errors / empty answers:", dict(stats.errors))
    met = all(
        percentile(stats.samples[n], 99) <= 0.050
        for n in ("next_task", "audio_delivery")
        if stats.samples.get(n)
    )
    print(f"target p99 <= 50 ms for next task and audio delivery: {'met' if met else 'NOT met'}", flush=True)
    return met


def audit_check(dep: Deployment) -> None:
    """Print what the run left in the audit log: pending events, tree size, whether it verifies."""
    from earshot.audit.services import head
    from earshot.audit.verify import verify_deployment

    with dep.db.session() as s:
        pending = s.execute(sa.text("select count(*) from audit_pending")).scalar()
    report = verify_deployment(dep)  # sequences what is pending first
    with dep.db.session() as s:
        size, _ = head(s)
    print(
        f"audit log: {pending} events pending at the end of the run; tree size {size}; "
        f"verify: {report.summary()}",
        flush=True,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default=os.environ.get("EARSHOT_BENCH_POSTGRES_URL", DEFAULT_URL))
    ap.add_argument("--snippets", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=5_000)
    ap.add_argument("--snippets-per-recording", type=int, default=5)
    ap.add_argument("--snippet-s", type=float, default=3.0)
    ap.add_argument("--reviewers", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=60.0, help="measured period (after --warmup)")
    ap.add_argument("--warmup", type=float, default=10.0, help="at least the staggered start (--think-s)")
    ap.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="diagnostic: sys.setswitchinterval (s) - how long a busy thread keeps the GIL from waiting ones",
    )
    ap.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="diagnostic: skip the gc.freeze() after start-up that `earshot serve` does",
    )
    ap.add_argument(
        "--listen-s", type=float, default=2.0, help="pause between audio and grade (>= snippet/2)"
    )
    ap.add_argument("--think-s", type=float, default=5.0, help="mean pause after each grade")
    ap.add_argument("--pool", type=int, default=60, help="database connections in all (split over processes)")
    ap.add_argument(
        "--processes",
        type=int,
        default=1,
        help="server-like processes sharing the reviewers, as `earshot serve --workers N` (default 1)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the bench schema (and its data dir)")
    ap.add_argument(
        "--schema",
        default=None,
        help="bench schema name: loaded if missing, reused as is if present (implies --keep); "
        "its data dir is /dev/shm/earshot-<schema>",
    )
    ap.add_argument(
        "--levels",
        type=lambda v: [int(x) for x in v.split(",")],
        default=None,
        help="several concurrency levels on the same pool, e.g. 1,50,200 (default: --reviewers)",
    )
    ap.add_argument(
        "--no-audit-monitoring",
        action="store_true",
        help="diagnostic: skip the audit log's monitoring rules (records are still appended)",
    )
    args = ap.parse_args()
    args.pool_per_process = max(1, -(-args.pool // max(1, args.processes)))
    if args.no_audit_monitoring:
        from earshot.audit import monitoring

        monitoring.check_event = lambda *_a, **_k: None
        print("diagnostic run: audit monitoring rules disabled")

    schema = args.schema or "bench_" + secrets.token_hex(4)
    args.keep = args.keep or args.schema is not None
    admin = sa.create_engine(args.database_url)
    print(machine_info(admin))
    with admin.begin() as c:
        reuse = c.execute(
            sa.text("select 1 from pg_namespace where nspname = :s"), {"s": schema}
        ).first() is not None
        if not reuse:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    if args.schema:
        data_dir = os.path.join(shm, f"earshot-{schema}")
        os.makedirs(data_dir, exist_ok=True)
    else:
        data_dir = tempfile.mkdtemp(prefix="earshot-bench-", dir=shm)
    dep = Deployment.open(load_settings(data_dir, database_url=_schema_url(args.database_url, schema)))
    try:
        configure(dep, args.pool)
        set_policy(dep, ReviewPolicy(gold_rate=0.0, quota_per_hour=10_000, quota_per_shift=100_000))
        args.reviewers = max([args.reviewers, *(args.levels or [])])
        if reuse:
            from earshot.database import Base

            Base.metadata.create_all(dep.db.engine, checkfirst=True)  # tables newer than the kept schema
            reviewers = existing_reviewers(dep, args.reviewers)
            with dep.db.session() as s:
                queued = s.execute(sa.text("select count(*) from snippets where status = 'queued'")).scalar()
            print(f"reusing schema {schema} (data dir {data_dir}): {queued} queued snippets", flush=True)
        else:
            print(f"loading into schema {schema} (data dir {data_dir}) ...", flush=True)
            reviewers = load(dep, args)
        if args.switch_interval:
            sys.setswitchinterval(args.switch_interval)
            print(f"GIL switch interval {1000 * sys.getswitchinterval():g} ms")
        if args.gc_freeze:
            n = freeze_startup_heap()
            print(f"gc.freeze(): {n} start-up objects out of the collector's way (as earshot serve does)")
        met = True
        for level in args.levels or [args.reviewers]:
            met = run_level(dep, reviewers[:level], args) and met
            audit_check(dep)
        return 0
    finally:
        dep.close()  # stops the audit sequencer too, before the schema may be dropped
        if not args.keep:
            with admin.begin() as c:
                c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            import shutil

            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"kept schema {schema} and data dir {data_dir} (reuse with --schema {schema})")
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
