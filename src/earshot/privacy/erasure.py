"""Erasure by crypto-shredding (GDPR Art. 17).

Destroying the customer's data key makes every blob and field of theirs unreadable at once,
wherever copies sit (blob store, backups); the rows, blobs and pseudonym link are removed after.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from earshot.audit import services as audit
from earshot.deployment import Deployment
from earshot.intake.models import Recording
from earshot.privacy.models import ConsentEvent, ErasedSnippet
from earshot.privacy.services import find_customer
from earshot.review.models import Snippet


@dataclass
class ErasureReport:
    snippets: int
    recordings: int
    blob_ids: list[str] = field(default_factory=list, repr=False)


def erase_customer(
    session: Session, deployment: Deployment, external_id: str, *, actor: str, ip: str | None = None
) -> ErasureReport | None:
    """Shred the key, then delete rows and the pseudonym link; blobs are deleted after commit.

    Returns None when no such customer is known. The caller commits; `purge_blobs` runs after.
    """
    customer = find_customer(session, deployment, external_id)
    if customer is None:
        return None
    deployment.vault.shred(session, customer.id)
    snippet_rows = session.execute(
        select(Snippet.id, Snippet.audio_blob_id).where(Snippet.customer_id == customer.id)
    ).all()
    recording_rows = session.execute(
        select(Recording.id, Recording.raw_blob_id).where(Recording.customer_id == customer.id)
    ).all()
    blob_ids = [b for _, b in snippet_rows if b] + [b for _, b in recording_rows if b]
    if snippet_rows:
        session.add_all([ErasedSnippet(snippet_id=sid) for sid, _ in snippet_rows])
    session.execute(delete(Snippet).where(Snippet.customer_id == customer.id))
    session.execute(delete(Recording).where(Recording.customer_id == customer.id))
    session.execute(delete(ConsentEvent).where(ConsentEvent.customer_id == customer.id))
    pseudonym = customer.id
    session.delete(customer)  # the link between the product's id and the pseudonym
    audit.record(session, actor=actor, action="customer.erased", target=pseudonym, ip=ip,
                 details={"snippets": len(snippet_rows), "recordings": len(recording_rows)})
    session.flush()
    report = ErasureReport(len(snippet_rows), len(recording_rows), blob_ids)
    return report


def purge_blobs(deployment: Deployment, blob_ids: list[str]) -> None:
    """Remove the (already unreadable) ciphertext of an erased customer from the blob store."""
    for blob_id in blob_ids:
        deployment.vault.delete_blob(blob_id)
