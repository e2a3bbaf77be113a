"""Erasure by crypto-shredding (GDPR Art. 17), in two steps.

1. `erase_customer` - one short transaction whose cost does not depend on how much is held:
   delete the customer's data key (every snippet, transcript, grade and raw recording of theirs,
   wherever a copy sits - blob store, database dump, backup - is unreadable from that commit on),
   delete the link from the product's id to the pseudonym, write an erasure receipt and an audit
   record that names only the random pseudonym.
2. `purge_erasure` - removes the now unreadable rows and blobs in batches, leaves tombstones for
   exported datasets (`ErasedSnippet`), and finally deletes the customer row. It is idempotent;
   it runs right after step 1 (CLI, or a background task after the API answered) and the
   retention sweeper completes any purge that was interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from earshot.audit import services as audit
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.intake.models import Recording
from earshot.privacy.cleanup import BATCH, drop_recordings, drop_snippets
from earshot.privacy.models import Customer, Erasure
from earshot.privacy.services import find_customer
from earshot.review.models import Snippet


@dataclass(frozen=True)
class ErasureReport:
    """The receipt handed back to the product or the privacy officer (no personal data in it)."""

    erasure_id: str
    status: str  # shredded | purged
    shredded_at: datetime
    purged_at: datetime | None = None
    snippets: int = 0
    recordings: int = 0
    blobs: int = 0

    @classmethod
    def of(cls, row: Erasure) -> ErasureReport:
        return cls(
            row.id, row.status, row.shredded_at, row.purged_at, row.snippets, row.recordings, row.blobs
        )

    def to_json(self) -> dict[str, object]:
        return {
            "erasure_id": self.erasure_id,
            "status": self.status,
            "shredded_at": self.shredded_at.isoformat(),
            "purged_at": self.purged_at.isoformat() if self.purged_at else None,
            "snippets": self.snippets,
            "recordings": self.recordings,
            "blobs": self.blobs,
        }


def erase_customer(
    session: Session,
    deployment: Deployment,
    external_id: str,
    *,
    actor: str,
    source: str = "cli",
    ip: str | None = None,
) -> ErasureReport | None:
    """Step 1: shred the key and cut the link (constant cost). None if no such customer is held.

    The caller commits; from that commit on nothing of the customer can be decrypted. Run
    `purge_erasure` afterwards to remove the rows and blobs.
    """
    customer = find_customer(session, deployment, external_id)
    if customer is None:
        return None
    now = utcnow()
    deployment.vault.shred(session, customer.id)
    customer.lookup_hash = None  # the product's id no longer leads to the pseudonym
    customer.consented = False
    customer.erased_at = now
    # Recordings waiting for the pipeline (bounded by the daily cap, not by what is held) must
    # not be picked up again: the pipeline could not decrypt them anyway.
    session.execute(
        update(Recording)
        .where(Recording.customer_id == customer.id, Recording.status == "pending")
        .values(status="erased")
        .execution_options(synchronize_session=False)
    )
    receipt = Erasure(customer_id=customer.id, source=source, status="shredded", shredded_at=now)
    session.add(receipt)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="customer.erased",
        target=customer.id,
        ip=ip,
        details={"erasure": receipt.id, "step": "shredded", "source": source},
    )
    session.flush()
    return ErasureReport.of(receipt)


def _purge_batch(session: Session, deployment: Deployment, receipt: Erasure) -> bool:
    """Remove one batch of the customer's rows and blobs; True when nothing is left."""
    snippets = session.execute(
        select(Snippet.id, Snippet.audio_blob_id)
        .where(Snippet.customer_id == receipt.customer_id)
        .limit(BATCH)
    ).all()
    if snippets:
        receipt.blobs += drop_snippets(session, deployment, [tuple(r) for r in snippets], reason="erasure")
        receipt.snippets += len(snippets)
        return False
    recordings = session.execute(
        select(Recording.id, Recording.raw_blob_id)
        .where(Recording.customer_id == receipt.customer_id)
        .limit(BATCH)
    ).all()
    if recordings:
        receipt.blobs += drop_recordings(session, deployment, [tuple(r) for r in recordings])
        receipt.recordings += len(recordings)
        return False
    return True


def _locked_receipt(session: Session, erasure_id: str) -> Erasure | None:
    """The receipt, locked for this transaction so that two purgers never work on one erasure.

    A no-op UPDATE takes the row lock on PostgreSQL and the write lock on SQLite before we read.
    """
    session.execute(
        update(Erasure)
        .where(Erasure.id == erasure_id)
        .values(status=Erasure.status)
        .execution_options(synchronize_session=False)
    )
    return session.get(Erasure, erasure_id, populate_existing=True)


def purge_erasure(
    deployment: Deployment, erasure_id: str, *, actor: str = "privacy:purge"
) -> ErasureReport | None:
    """Step 2: delete the erased customer's rows and blobs in batches (each batch commits).

    Idempotent and restartable; None if there is no such receipt.
    """
    while True:
        with deployment.db.session() as session:
            receipt = _locked_receipt(session, erasure_id)
            if receipt is None:
                return None
            if receipt.status == "purged":
                return ErasureReport.of(receipt)
            done = _purge_batch(session, deployment, receipt)
            if not done:
                continue
            # A key re-created by a pipeline step racing with step 1 dies here too, then the
            # customer row (consent history and counters by cascade) goes.
            deployment.vault.shred(session, receipt.customer_id)
            customer = session.get(Customer, receipt.customer_id)
            if customer is not None:
                session.delete(customer)
            receipt.status = "purged"
            receipt.purged_at = utcnow()
            audit.record(
                session,
                actor=actor,
                action="customer.purged",
                target=receipt.customer_id,
                details={
                    "erasure": receipt.id,
                    "snippets": receipt.snippets,
                    "recordings": receipt.recordings,
                    "blobs": receipt.blobs,
                },
            )
            session.flush()
            return ErasureReport.of(receipt)


def purge_pending_erasures(deployment: Deployment) -> int:
    """Finish every purge that has not completed (crash, restart); returns how many were finished."""
    with deployment.db.session() as session:
        ids = list(session.scalars(select(Erasure.id).where(Erasure.status == "shredded")))
    for erasure_id in ids:
        purge_erasure(deployment, erasure_id)
    return len(ids)


def erasure_report(session: Session, erasure_id: str) -> ErasureReport | None:
    """The receipt for an erasure id (what the product keeps as proof of the request)."""
    row = session.get(Erasure, erasure_id)
    return ErasureReport.of(row) if row is not None else None


def erase_and_purge(
    deployment: Deployment, external_id: str, *, actor: str, source: str = "cli", ip: str | None = None
) -> ErasureReport | None:
    """Both steps at once (CLI and tests): shred and commit, then purge."""
    with deployment.db.session() as session:
        report = erase_customer(session, deployment, external_id, actor=actor, source=source, ip=ip)
    if report is None:
        return None
    return purge_erasure(deployment, report.erasure_id)
