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
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from earshot.audit.checkpoints import Checkpoint, list_checkpoints, read_file
from earshot.audit.merkle import EMPTY_ROOT
from earshot.audit.services import ENTRY_VERSION, HEAD_ID
from earshot.audit.signing import MAC_PERSON, MAC_SIZE, TIME_FORMAT, AuditKeys, format_time

if TYPE_CHECKING:
    from earshot.deployment import Deployment

MAX_PROBLEMS = 50
RECORDS_QUERY = (
    "SELECT seq, at, actor, action, target, ip, outcome, details, leaf_hash, mac "
    "FROM audit_records ORDER BY seq"
)


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
) -> dict[int, bytes]:
    """Signatures, db/file agreement, forks. Returns the signed root per size."""
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
    db_ids = {cp.identity() for cp in db_cps}
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
    session: Session, keys: AuditKeys, checkpoint_file: Path, *, batch: int = 20_000
) -> VerifyReport:
    """Check the log in `session`'s database against its checkpoints; see the module docstring."""
    started = time.perf_counter()
    report = VerifyReport()
    db_cps = list_checkpoints(session)
    file_cps, bad_lines = read_file(checkpoint_file)
    report.checkpoints_db, report.checkpoints_file = len(db_cps), len(file_cps)
    signed = _check_checkpoints(report, keys, db_cps, file_cps, bad_lines)
    pending_sizes = sorted(signed)
    next_cp = pending_sizes.pop(0) if pending_sizes else None
    last_good_size = 0

    sha256 = hashlib.sha256
    blake2s = hashlib.blake2s
    q = encode_basestring_ascii
    mac_key = keys.mac_key
    stack: list[bytes] = []
    n = 0
    prefix = f'\x00["{ENTRY_VERSION}",'
    for rows in _row_batches(session, batch):
        for seq, at, actor, action, target, ip, outcome, details, stored_leaf, mac in rows:
            n += 1
            if seq != n:
                if isinstance(seq, int) and seq > n:
                    report.add(Problem("record", f"records {n}..{seq - 1} are missing (deleted)", n))
                else:
                    report.add(Problem("record", f"record {n} is out of order or malformed", n))
            try:
                if type(at) is str and len(at) == 26 and at[10] == " ":
                    at_text = at[:10] + "T" + at[11:] + "Z"
                else:
                    at_text = _at_text(at)
                leaf = sha256(
                    (
                        f"{prefix}{seq},{q(at_text)},{q(actor)},{q(action)},"
                        f"{'null' if target is None else q(target)},{'null' if ip is None else q(ip)},"
                        f"{q(outcome)},{q(details)}]"
                    ).encode()
                ).digest()
            except (TypeError, ValueError, UnicodeError):
                leaf = b""  # a column no append could have written
            if leaf != stored_leaf:
                report.add(
                    Problem("record", f"record {seq} was altered (content does not match its leaf hash)", n)
                )
            elif (
                mac is None
                or blake2s(leaf, key=mac_key, digest_size=MAC_SIZE, person=MAC_PERSON).digest() != mac
            ):
                report.add(
                    Problem(
                        "record",
                        f"record {seq} has a missing or wrong MAC "
                        "(altered, or written outside the application)",
                        n,
                    )
                )
            # append to the frontier (the compact range of the first n leaves)
            m = n - 1
            node = leaf
            while m & 1:
                node = sha256(b"\x01" + stack.pop() + node).digest()
                m >>= 1
            stack.append(node)
            if n == next_cp:
                if _root(stack) == signed[n]:
                    last_good_size = n
                else:
                    _tree_mismatch(report, last_good_size, n)
                next_cp = pending_sizes.pop(0) if pending_sizes else None
    report.records = n
    if next_cp is not None:
        report.add(
            Problem(
                "record",
                f"signed checkpoint at size {next_cp} but the log has only {n} records: "
                f"records {n + 1}..{next_cp} were deleted",
                n + 1,
            )
        )
    row = session.execute(text("SELECT size, root FROM audit_head WHERE id = :id"), {"id": HEAD_ID}).first()
    root = _root(stack)
    if row is None:
        if n:
            report.add(Problem("head", "the tree head row is missing"))
    elif int(row[0]) != n or bytes(row[1]) != root:
        report.add(
            Problem(
                "head",
                f"the tree head says {row[0]} records but the log recomputes to {n} "
                "(records deleted after the newest checkpoint?)",
                n + 1 if int(row[0]) > n else None,
            )
        )
    report.seconds = time.perf_counter() - started
    return report


def _row_batches(session: Session, batch: int) -> Iterator[Sequence[Sequence[Any]]]:
    """Every record's columns in seq order, in batches (a plain DB-API cursor on SQLite: fastest)."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(RECORDS_QUERY)
            while rows := cursor.fetchmany(batch):
                yield rows
        finally:
            cursor.close()
        return
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(text(RECORDS_QUERY))
    yield from result.partitions(batch)


def _at_text(value: object) -> str:
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        value = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def _root(stack: list[bytes]) -> bytes:
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
    """`verify_log` with the deployment's keys and checkpoint file."""
    from earshot.audit.context import install

    ctx = install(deployment)
    with deployment.db.session() as session:
        return verify_log(session, ctx.keys, ctx.checkpoint_file)
