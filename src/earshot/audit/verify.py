"""Verify the whole log: recompute every leaf and the tree, check every checkpoint and signature.

One streaming pass over the records in seq order:

- seq must run 1, 2, 3, ... (a gap is a deleted record, a renumbering an insertion);
- each record's entry is re-encoded and hashed; it must equal the stored leaf hash, and the stored
  MAC (HMAC under a server secret) must match it, which names a record even when an attacker also
  rewrote its public leaf hash;
- the tree is rebuilt with a frontier, and at each checkpointed size its root must equal the
  signed root (catching rewrites by anyone who has the MAC key but not the checkpoint file);
- checkpoints in the database and in the append-only file must be the same set, each with a good
  Ed25519 signature under the deployment's key, and no two may disagree about one size;
- the head row must match the recomputed tree (catching truncation of the newest records).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from earshot.audit.checkpoints import Checkpoint, list_checkpoints, read_file
from earshot.audit.merkle import EMPTY_ROOT
from earshot.audit.scan import MAX_PROBLEMS, RECORDS_QUERY, ScanResult, scan, scan_sqlite_chunk
from earshot.audit.services import HEAD_ID
from earshot.audit.signing import AuditKeys, format_time

if TYPE_CHECKING:
    from earshot.deployment import Deployment


@dataclass
class Problem:
    """One thing that does not hold. `seq` names the record when it can be named."""

    kind: str  # record | tree | checkpoint | head
    message: str
    seq: int | None = None


@dataclass
class VerifyReport:
    records: int = 0
    checkpoints_db: int = 0
    checkpoints_file: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    more_problems: int = 0
    first_bad_seq: int | None = None
    first_bad_range: tuple[int, int] | None = None  # when only a checkpoint pins it down

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.more_problems += 1
        if problem.seq is not None and (self.first_bad_seq is None or problem.seq < self.first_bad_seq):
            self.first_bad_seq = problem.seq

    def summary(self) -> str:
        if self.ok:
            return (
                f"OK: {self.records} records, {self.checkpoints_db} checkpoints in the database and "
                f"{self.checkpoints_file} in the file all verify ({self.seconds:.2f} s)"
            )
        if self.first_bad_seq is not None:
            where = f"first bad record: seq {self.first_bad_seq}"
        elif self.first_bad_range is not None:
            where = f"first bad record lies in seq {self.first_bad_range[0]}..{self.first_bad_range[1]}"
        else:
            where = "no record named"
        return f"FAILED: {len(self.problems) + self.more_problems} problem(s); {where}"


def _check_checkpoints(
    report: VerifyReport,
    keys: AuditKeys,
    db_cps: list[Checkpoint],
    file_cps: list[Checkpoint],
    bad_lines: list[int],
    in_flight: set[tuple[int, bytes, str, bytes]],
) -> dict[int, bytes]:
    """Signatures, db/file agreement, forks. Returns the signed root per size.

    `in_flight`: file checkpoints whose database commit may still be under way (not missing)."""
    for line in bad_lines:
        report.add(Problem("checkpoint", f"checkpoint file line {line} is not a checkpoint (edited?)"))
    roots: dict[int, bytes] = {}
    for source, cps in (("database", db_cps), ("file", file_cps)):
        for cp in cps:
            if cp.key_id != keys.key_id or not keys.check_signature(
                cp.tree_size, cp.root_hash, cp.at, cp.signature
            ):
                report.add(
                    Problem(
                        "checkpoint",
                        f"checkpoint at size {cp.tree_size} ({source}) has a bad "
                        "signature: altered or not made by this deployment",
                    )
                )
                continue
            known = roots.setdefault(cp.tree_size, cp.root_hash)
            if known != cp.root_hash:
                report.add(
                    Problem(
                        "checkpoint",
                        f"two signed checkpoints disagree about size {cp.tree_size} (forked log)",
                    )
                )
    db_ids = {cp.identity() for cp in db_cps} | in_flight  # in flight: not yet committed, not missing
    file_ids = {cp.identity() for cp in file_cps}
    for cp in db_cps:
        if cp.identity() not in file_ids:
            report.add(
                Problem(
                    "checkpoint",
                    f"checkpoint at size {cp.tree_size} ({format_time(cp.at)}) is in "
                    "the database but not in the checkpoint file",
                )
            )
    for cp in file_cps:
        if cp.identity() not in db_ids:
            report.add(
                Problem(
                    "checkpoint",
                    f"checkpoint at size {cp.tree_size} ({format_time(cp.at)}) is in "
                    "the checkpoint file but missing from the database",
                )
            )
    return roots


def verify_log(
    session: Session,
    keys: AuditKeys,
    checkpoint_file: Path,
    *,
    batch: int = 20_000,
    workers: int | None = None,
) -> VerifyReport:
    """Check the log in `session`'s database against its checkpoints; see the module docstring.

    On SQLite a large, gap-free log is scanned by `workers` processes (default: the CPUs available)
    in power-of-two aligned chunks whose subtrees combine exactly into the tree.
    """
    started = time.perf_counter()
    report = VerifyReport()
    # The head is read first: records appended while we scan are beyond it and left for next time.
    head_row = session.execute(
        text("SELECT size, root FROM audit_head WHERE id = :id"), {"id": HEAD_ID}
    ).first()
    limit = int(head_row[0]) if head_row is not None else None
    db_cps, file_cps, bad_lines, in_flight = _read_checkpoints(session, checkpoint_file)
    report.checkpoints_db, report.checkpoints_file = len(db_cps), len(file_cps)
    signed = _check_checkpoints(report, keys, db_cps, file_cps, bad_lines, in_flight)
    sizes = sorted(s for s in signed if limit is None or s <= limit)
    newer = sorted(s for s in signed if limit is not None and s > limit)  # signed while we started
    scans = _parallel_scans(session, limit, keys.mac_key, sizes, workers)
    if scans is None:
        scans = [scan(_row_batches(session, batch, limit), 0, keys.mac_key, sizes)]

    tree: list[tuple[int, bytes]] = []  # compact range of everything scanned so far: (size, hash)
    last_good = 0
    n = 0
    for part in scans:
        for seq, message in part.problems:
            report.add(Problem("record", message, seq))
        report.more_problems += part.more_problems
        for size in sorted(part.snapshots):
            if _fold([h for _, h in tree] + part.snapshots[size]) == signed[size]:
                last_good = size
            else:
                _tree_mismatch(report, last_good, size)
        subtree_sizes = [1 << b for b in range(part.count.bit_length() - 1, -1, -1) if part.count >> b & 1]
        for size, node in zip(subtree_sizes, part.stack, strict=True):
            while tree and tree[-1][0] == size:
                node = hashlib.sha256(b"\x01" + tree.pop()[1] + node).digest()
                size *= 2
            tree.append((size, node))
        n += part.count
    report.records = n
    missing = [size for size in sizes if size > n]
    if missing:
        report.add(
            Problem(
                "record",
                f"signed checkpoint at size {missing[0]} but the log has only {n} records: "
                f"records {n + 1}..{missing[-1]} were deleted",
                n + 1,
            )
        )
    if newer and limit is not None:
        present = session.execute(
            text("SELECT count(*) FROM audit_records WHERE seq > :lo AND seq <= :hi"),
            {"lo": limit, "hi": newer[-1]},
        ).scalar_one()
        if present != newer[-1] - limit:
            report.add(
                Problem(
                    "record",
                    f"signed checkpoint at size {newer[-1]} but records after {limit} are missing "
                    "(deleted, and the tree head rolled back)",
                    limit + 1,
                )
            )
    root = _fold([h for _, h in tree])
    # A missing head row is rebuilt from the records by the next append, so it is no finding itself.
    if head_row is not None and (int(head_row[0]) != n or bytes(head_row[1]) != root):
        report.add(
            Problem(
                "head",
                f"the tree head says {head_row[0]} records but the log recomputes to {n} "
                "(records deleted after the newest checkpoint?)",
                n + 1 if int(head_row[0]) > n else None,
            )
        )
    report.seconds = time.perf_counter() - started
    return report


def _read_checkpoints(
    session: Session, checkpoint_file: Path, attempts: int = 10
) -> tuple[list[Checkpoint], list[Checkpoint], list[int], set[tuple[int, bytes, str, bytes]]]:
    """Checkpoints from the database and the file, and the ones still being written.

    A checkpoint is appended to the file before its database commit. So the file is read first
    and the database is re-read (in a fresh session: the caller's read transaction, a SQLite WAL
    snapshot, would never see the commit) until it holds every checkpoint of that first read;
    one that stays missing is a real problem. The file is read again last, so it holds every
    checkpoint the database does; lines that appeared in it during this read and are not yet in
    the database are returned as in flight, not counted as missing (the next verify checks them).
    A writer that never stops cannot make this loop spin: the first read's set is fixed.
    """
    first, _ = read_file(checkpoint_file)
    first_ids = {c.identity() for c in first}
    db_cps = list_checkpoints(session)
    for _ in range(attempts - 1):
        if first_ids <= {c.identity() for c in db_cps}:
            break
        time.sleep(0.3)
        with Session(session.get_bind()) as fresh:
            db_cps = list_checkpoints(fresh)
    file_cps, bad_lines = read_file(checkpoint_file)
    in_flight = {c.identity() for c in file_cps} - first_ids - {c.identity() for c in db_cps}
    return db_cps, file_cps, bad_lines, in_flight


PARALLEL_MIN_RECORDS = 1 << 18
MIN_CHUNK_BITS = 16


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _parallel_scans(
    session: Session, limit: int | None, mac_key: bytes, sizes: list[int], workers: int | None
) -> list[ScanResult] | None:
    """Scan a SQLite log in aligned chunks in worker processes; None when that does not apply."""
    conn = session.connection()
    workers = workers or min(_available_cpus(), 8)
    if conn.dialect.name != "sqlite" or workers < 2 or not limit or limit < PARALLEL_MIN_RECORDS:
        return None
    path = conn.engine.url.database
    if not path or path == ":memory:":
        return None
    count, low, high = session.execute(
        text("SELECT count(*), min(seq), max(seq) FROM audit_records WHERE seq <= :n"), {"n": limit}
    ).one()
    if count != limit or low != 1 or high != limit:
        return None  # gaps: the sequential scan names them
    chunk = 1 << max(MIN_CHUNK_BITS, (limit // (2 * workers)).bit_length() - 1)
    bounds = [(lo, min(lo + chunk, limit)) for lo in range(0, limit, chunk)]
    method = "fork" if threading.active_count() == 1 and "fork" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method)) as pool:
        futures = [
            pool.submit(scan_sqlite_chunk, path, lo, hi, mac_key, [s for s in sizes if lo < s <= hi])
            for lo, hi in bounds
        ]
        return [f.result() for f in futures]


def _row_batches(session: Session, batch: int, limit: int | None) -> Iterator[Sequence[Sequence[Any]]]:
    """Every record's columns in seq order, in batches (a plain DB-API cursor on SQLite: fastest)."""
    conn = session.connection()
    where = "" if limit is None else f" WHERE seq <= {int(limit)}"
    query = RECORDS_QUERY + where + " ORDER BY seq"
    if conn.dialect.name == "sqlite":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(query)
            while rows := cursor.fetchmany(batch):
                yield rows
        finally:
            cursor.close()
        return
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(text(query))
    yield from result.partitions(batch)


def _fold(stack: list[bytes]) -> bytes:
    """Root of a compact range given as its subtree hashes, largest first."""
    if not stack:
        return EMPTY_ROOT
    node = stack[-1]
    for h in reversed(stack[:-1]):
        node = hashlib.sha256(b"\x01" + h + node).digest()
    return node


def _tree_mismatch(report: VerifyReport, last_good: int, size: int) -> None:
    report.add(
        Problem(
            "tree",
            f"the records do not match the signed checkpoint at size {size}: a record in "
            f"{last_good + 1}..{size} was altered, inserted, deleted or reordered",
        )
    )
    if report.first_bad_range is None:
        report.first_bad_range = (last_good + 1, size)


def verify_deployment(deployment: Deployment) -> VerifyReport:
    """`verify_log` with the deployment's keys and checkpoint file (pending events sequenced first)."""
    from earshot.audit.context import install
    from earshot.audit.services import sequence_pending

    ctx = install(deployment)
    sequence_pending(deployment.db.engine)
    with deployment.db.session() as session:
        return verify_log(session, ctx.keys, ctx.checkpoint_file)
