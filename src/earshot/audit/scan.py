"""The inner loop of verification: recompute leaves, check MACs, fold the tree. No ORM, so worker
processes start fast.

A scan covers records at leaf positions [first, first + count). It returns problems found in
records, the compact range (stack of complete-subtree hashes) of its span, and a copy of that
stack at each requested absolute tree size, from which the caller builds the root at that size.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any

# The entry format and MAC parameters live here (imported by the append path) so workers need no ORM.
ENTRY_VERSION = "earshot.audit/1"
ENTRY_PREFIX = f'\x00["{ENTRY_VERSION}",'
MAC_SIZE = 16
MAC_PERSON = b"earshotA"  # BLAKE2 personalisation: these MACs are for audit leaves only
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
RECORDS_QUERY = (
    "SELECT seq, at, actor, action, target, ip, outcome, details, leaf_hash, mac FROM audit_records"
)
MAX_PROBLEMS = 50


@dataclass
class ScanResult:
    first: int  # leaf position of the first record scanned
    count: int = 0
    stack: list[bytes] = field(default_factory=list)
    snapshots: dict[int, list[bytes]] = field(default_factory=dict)  # absolute size -> stack
    problems: list[tuple[int, str]] = field(default_factory=list)  # (seq to name, message)
    more_problems: int = 0

    def add(self, seq: int, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((seq, message))
        else:
            self.more_problems += 1


def at_text(value: object) -> str:
    """Canonical text of a stored timestamp (SQLite text or a driver datetime)."""
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " ":
            return value[:10] + "T" + value[11:] + "Z"
        parsed = datetime.fromisoformat(value)
        value = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if not isinstance(value, datetime):
        raise TypeError("not a time")
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def scan(
    batches: Iterable[Sequence[Sequence[Any]]], first: int, mac_key: bytes, snapshot_sizes: Iterable[int]
) -> ScanResult:
    """Check every record in `batches` (rows of RECORDS_QUERY's columns, in seq order)."""
    result = ScanResult(first)
    wanted = sorted(s for s in snapshot_sizes if s > first)
    next_snapshot = wanted.pop(0) if wanted else None
    sha256 = hashlib.sha256
    blake2s = hashlib.blake2s
    q = encode_basestring_ascii
    stack = result.stack
    n = first  # records before this one
    for rows in batches:
        for seq, at, actor, action, target, ip, outcome, details, stored_leaf, mac in rows:
            n += 1
            if seq != n:
                if isinstance(seq, int) and seq > n:
                    result.add(n, f"records {n}..{seq - 1} are missing (deleted)")
                else:
                    result.add(n, f"record {n} is out of order or malformed")
            try:
                if type(at) is str and len(at) == 26 and at[10] == " ":
                    when = at[:10] + "T" + at[11:] + "Z"
                else:
                    when = at_text(at)
                leaf = sha256(
                    (
                        f"{ENTRY_PREFIX}{seq},{q(when)},{q(actor)},{q(action)},"
                        f"{'null' if target is None else q(target)},{'null' if ip is None else q(ip)},"
                        f"{q(outcome)},{q(details)}]"
                    ).encode()
                ).digest()
            except (TypeError, ValueError, UnicodeError):
                leaf = b""  # a column no append could have written
            if leaf != stored_leaf:
                result.add(n, f"record {seq} was altered (content does not match its leaf hash)")
            elif mac is None:
                result.add(
                    n,
                    f"record {seq} has no MAC: stripped, or written by a process whose deployment was not "
                    "registered with earshot.audit.context.install (Deployment.open must call it)",
                )
            elif blake2s(leaf, key=mac_key, digest_size=MAC_SIZE, person=MAC_PERSON).digest() != mac:
                result.add(n, f"record {seq} has a wrong MAC (altered, or written outside the application)")
            m = n - 1 - first  # position within this scan: its stack is relative to `first`
            node = leaf
            while m & 1:
                node = sha256(b"\x01" + stack.pop() + node).digest()
                m >>= 1
            stack.append(node)
            if n == next_snapshot:
                result.snapshots[n] = list(stack)
                next_snapshot = wanted.pop(0) if wanted else None
    result.count = n - first
    return result


def sqlite_batches(path: str, low: int, high: int, batch: int = 20_000) -> Iterable[list[Any]]:
    """Rows with low < seq <= high from a SQLite file, read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cursor = conn.execute(RECORDS_QUERY + " WHERE seq > ? AND seq <= ? ORDER BY seq", (low, high))
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        conn.close()


def scan_sqlite_chunk(
    path: str, low: int, high: int, mac_key: bytes, snapshot_sizes: list[int]
) -> ScanResult:
    """Worker entry point: scan records low+1..high (which sit at leaf positions low..high-1)."""
    return scan(sqlite_batches(path, low, high), low, mac_key, snapshot_sizes)
