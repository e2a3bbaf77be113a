"""Deleting snippets and recordings together with their encrypted blobs, leaving tombstones.

Shared by withdrawal, erasure purge and the retention sweeper. Blobs are deleted inside the
caller's transaction, just before it commits: if the commit fails the rows still point at the
(now missing) blobs, and the next run of the same step deletes the rows - deletion converges and
never leaves orphaned ciphertext behind (the 2023 FTC finding was "deleted here, kept there").
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Select, delete, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.intake.models import Recording
from earshot.privacy.models import ErasedSnippet
from earshot.review.models import Snippet

BATCH = 500
DELETE_THREADS = 8
PARALLEL_FROM = 16


def delete_blobs(deployment: Deployment, blob_ids: Sequence[str | None]) -> int:
    """Remove ciphertext from the blob store (missing ones are fine: deletion is idempotent).

    Deletions are I/O-bound (a file unlink, an object-store request), so larger sets run on a few
    threads: a purge of 10 000 blobs takes seconds, not minutes.
    """
    ids = [b for b in blob_ids if b]
    if len(ids) < PARALLEL_FROM:
        for blob_id in ids:
            deployment.vault.delete_blob(blob_id)
    else:
        with ThreadPoolExecutor(max_workers=DELETE_THREADS, thread_name_prefix="earshot-delete") as pool:
            list(pool.map(deployment.vault.delete_blob, ids))
    return len(ids)


def tombstone(session: Session, snippet_ids: Sequence[str], reason: str) -> None:
    """Record that these snippets are gone, so exported datasets can drop rows derived from them."""
    if not snippet_ids:
        return
    now = utcnow()
    rows = [{"snippet_id": sid, "reason": reason, "erased_at": now} for sid in snippet_ids]
    dialect = session.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(ErasedSnippet)
    # Two deleters racing on one snippet (purge and sweeper) must not fail on the second tombstone.
    session.execute(ins.on_conflict_do_nothing(index_elements=["snippet_id"]), rows)


def drop_snippets(
    session: Session, deployment: Deployment, rows: Sequence[tuple[str, str | None]], *, reason: str | None
) -> int:
    """Delete snippets `(id, audio_blob_id)`; grades and assignments go by cascade. Returns blobs removed.

    With a `reason`, a tombstone is left for each snippet (see `ErasedSnippet`).
    """
    ids = [sid for sid, _ in rows]
    if not ids:
        return 0
    if reason:
        tombstone(session, ids, reason)
    session.execute(delete(Snippet).where(Snippet.id.in_(ids)).execution_options(synchronize_session=False))
    session.flush()
    return delete_blobs(deployment, [blob for _, blob in rows])


def drop_recordings(session: Session, deployment: Deployment, rows: Sequence[tuple[str, str | None]]) -> int:
    """Delete recordings `(id, raw_blob_id)` and their raw audio; their snippets must be gone already."""
    ids = [rid for rid, _ in rows]
    if not ids:
        return 0
    session.execute(
        delete(Recording).where(Recording.id.in_(ids)).execution_options(synchronize_session=False)
    )
    session.flush()
    return delete_blobs(deployment, [blob for _, blob in rows])


def begin_write(session: Session) -> None:
    """Take the database write lock now on SQLite, so what we read next cannot change under us.

    (pysqlite starts the transaction lazily; a read-then-write transaction could otherwise fail with
    a stale snapshot when another process deleted first. PostgreSQL callers lock rows instead.)
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE erased_snippets SET reason = reason WHERE 1 = 0"))


def for_update(stmt: Select, session: Session, *of: type) -> Select:
    """Lock the selected rows on PostgreSQL, skipping those another deleter holds."""
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True, of=list(of) or None)
    return stmt
