"""Tombstones of deleted snippets, for consumers of exported datasets (Art. 17(1) and 19).

An exported dataset row carries `snippet_id`; once that snippet is erased (or reaches its maximum
age) its id appears here, and the consumer must drop the row and anything trained on it when it
next rebuilds. `drop_erased` does that for JSONL exports.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.privacy.models import ErasedSnippet


def tombstones(session: Session, *, since: datetime | None = None) -> list[dict[str, str]]:
    """Every tombstone (oldest first), or those written after `since`."""
    stmt = select(ErasedSnippet).order_by(ErasedSnippet.erased_at, ErasedSnippet.snippet_id)
    if since is not None:
        stmt = stmt.where(ErasedSnippet.erased_at > since)
    return [
        {"snippet_id": t.snippet_id, "reason": t.reason, "erased_at": t.erased_at.isoformat()}
        for t in session.scalars(stmt)
    ]


def write_tombstones(session: Session, out: IO[str], *, since: datetime | None = None) -> int:
    """One JSON object per line; returns how many."""
    rows = tombstones(session, since=since)
    for row in rows:
        out.write(json.dumps(row) + "\n")
    return len(rows)


def drop_erased(rows: Iterable[dict[str, Any]], erased_ids: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The dataset rows whose `snippet_id` has no tombstone."""
    gone = set(erased_ids)
    return (row for row in rows if row.get("snippet_id") not in gone)
