"""Customers and consent: opt-in before anything is kept, withdrawal as easy as consent (Art. 7).

The product's customer id is never stored: a keyed HMAC of it (`lookup_hash`) finds the random
pseudonym, and erasure deletes that link.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from earshot.audit import services as audit
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.intake.models import Recording
from earshot.privacy.cleanup import delete_blobs, drop_snippets
from earshot.privacy.models import ConsentEvent, Customer
from earshot.review.models import Snippet

# Default of `Settings.consent_text_version`; kept for callers that import it.
CONSENT_TEXT_VERSION = "2026-01"

# Snippet states in which review is over: their grades stand, withdrawal does not undo them
# (Art. 7(3): withdrawal does not affect the lawfulness of processing before it).
CONSOLIDATED = ("graded", "consolidated")
# Kept on withdrawal: consolidated work, and snippets the safety team holds under its own basis
# (Art. 6(1)(d), vital interests; Art. 17(3)(e), legal claims). Everything else is deleted.
KEPT_ON_WITHDRAWAL = (*CONSOLIDATED, "safety_hold")


@dataclass(frozen=True)
class ConsentRecord:
    action: str  # grant | withdraw
    text_version: str | None
    source: str
    at: datetime

    def to_json(self) -> dict[str, str | None]:
        return {
            "action": self.action,
            "text_version": self.text_version,
            "source": self.source,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class ConsentState:
    """What the product may show the customer: current state and the full history."""

    known: bool
    consented: bool
    text_version: str | None
    changed_at: datetime | None
    history: list[ConsentRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "consented": self.consented,
            "text_version": self.text_version,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
            "history": [r.to_json() for r in self.history],
        }


def lookup_hash(deployment: Deployment, external_id: str) -> str:
    """HMAC of the product's customer id: finds the pseudonym without storing the id."""
    return hmac.new(deployment.pseudonym_key, external_id.encode("utf-8"), hashlib.sha256).hexdigest()


def find_customer(session: Session, deployment: Deployment, external_id: str) -> Customer | None:
    """The customer linked to the product's id (None if unknown or erased)."""
    return session.scalar(
        select(Customer).where(Customer.lookup_hash == lookup_hash(deployment, external_id))
    )


def get_or_create_customer(session: Session, deployment: Deployment, external_id: str) -> Customer:
    customer = find_customer(session, deployment, external_id)
    if customer is None:
        customer = Customer(lookup_hash=lookup_hash(deployment, external_id))
        session.add(customer)
        session.flush()
    return customer


def consent_history(session: Session, customer_id: str) -> list[ConsentRecord]:
    events = session.scalars(
        select(ConsentEvent)
        .where(ConsentEvent.customer_id == customer_id)
        .order_by(ConsentEvent.at, ConsentEvent.id)
    )
    return [ConsentRecord(e.action, e.text_version, e.source, e.at) for e in events]


def consent_state(session: Session, deployment: Deployment, external_id: str) -> ConsentState:
    """Current consent and its history; an unknown (or erased) customer has not consented."""
    customer = find_customer(session, deployment, external_id)
    if customer is None:
        return ConsentState(known=False, consented=False, text_version=None, changed_at=None)
    return ConsentState(
        True,
        customer.consented,
        customer.consent_version,
        customer.consent_changed_at,
        consent_history(session, customer.id),
    )


def drop_pending(session: Session, deployment: Deployment, customer_id: str) -> tuple[int, int]:
    """Delete what is not yet consolidated: queued, gold, escalated, quarantined snippets and
    unprocessed recordings.

    Partly graded snippets go too (no further reviewer may hear them after withdrawal); as their
    grades may have been exported, they leave a `withdrawal` tombstone. Returns (snippets, recordings).
    """
    rows = session.execute(
        select(Snippet.id, Snippet.audio_blob_id, Snippet.grades_done).where(
            Snippet.customer_id == customer_id, Snippet.status.not_in(CONSOLIDATED)
        )
    ).all()
    exported = [(sid, blob) for sid, blob, done in rows if done > 0]
    fresh = [(sid, blob) for sid, blob, done in rows if done == 0]
    drop_snippets(session, deployment, exported, reason="withdrawal")
    drop_snippets(session, deployment, fresh, reason=None)
    pending = session.execute(
        select(Recording.id, Recording.raw_blob_id).where(
            Recording.customer_id == customer_id, Recording.status == "pending"
        )
    ).all()
    if pending:
        session.execute(
            update(Recording)
            .where(Recording.id.in_([rid for rid, _ in pending]))
            .values(status="withdrawn", raw_blob_id=None, hypothesis_enc=None)
            .execution_options(synchronize_session=False)
        )
        session.flush()
        delete_blobs(deployment, [blob for _, blob in pending])
    return len(rows), len(pending)


def set_consent(
    session: Session,
    deployment: Deployment,
    external_id: str,
    *,
    granted: bool,
    text_version: str | None = None,
    source: str = "cli",
    actor: str = "system",
    ip: str | None = None,
) -> Customer:
    """Record a grant or a withdrawal (Art. 7(1): the controller must be able to show consent).

    Withdrawal stops intake at once (intake checks `consented`) and deletes the customer's pending
    snippets and recordings. The caller commits.
    """
    version = text_version or deployment.settings.consent_text_version
    customer = get_or_create_customer(session, deployment, external_id)
    customer.consented = granted
    if granted:
        customer.consent_version = version
    customer.consent_changed_at = utcnow()
    session.add(
        ConsentEvent(
            customer_id=customer.id,
            action="grant" if granted else "withdraw",
            text_version=version,
            source=source,
            at=customer.consent_changed_at,
        )
    )
    removed = (0, 0)
    if not granted:
        removed = drop_pending(session, deployment, customer.id)
    audit.record(
        session,
        actor=actor,
        action="consent.grant" if granted else "consent.withdraw",
        target=customer.id,
        ip=ip,
        details={
            "text_version": version,
            "source": source,
            "pending_removed": removed[0],
            "recordings_removed": removed[1],
        },
    )
    session.flush()
    return customer


def has_consent(session: Session, deployment: Deployment, external_id: str) -> Customer | None:
    """The customer if they have opted in, else None."""
    customer = find_customer(session, deployment, external_id)
    return customer if customer is not None and customer.consented else None
