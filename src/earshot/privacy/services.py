"""Customers and consent: opt-in before anything is kept, withdrawal as easy as consent."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.audit import services as audit
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.privacy.models import ConsentEvent, Customer

CONSENT_TEXT_VERSION = "2026-01"


def lookup_hash(deployment: Deployment, external_id: str) -> str:
    """HMAC of the product's customer id: finds the pseudonym without storing the id."""
    return hmac.new(deployment.pseudonym_key, external_id.encode("utf-8"), hashlib.sha256).hexdigest()


def find_customer(session: Session, deployment: Deployment, external_id: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.lookup_hash == lookup_hash(deployment, external_id)))


def get_or_create_customer(session: Session, deployment: Deployment, external_id: str) -> Customer:
    customer = find_customer(session, deployment, external_id)
    if customer is None:
        customer = Customer(lookup_hash=lookup_hash(deployment, external_id))
        session.add(customer)
        session.flush()
    return customer


def set_consent(
    session: Session,
    deployment: Deployment,
    external_id: str,
    *,
    granted: bool,
    text_version: str = CONSENT_TEXT_VERSION,
    source: str = "cli",
    actor: str = "system",
    ip: str | None = None,
) -> Customer:
    """Record a grant or a withdrawal. Withdrawal stops intake at once and drops pending snippets."""
    customer = get_or_create_customer(session, deployment, external_id)
    customer.consented = granted
    customer.consent_version = text_version if granted else customer.consent_version
    customer.consent_changed_at = utcnow()
    session.add(
        ConsentEvent(
            customer_id=customer.id,
            action="grant" if granted else "withdraw",
            text_version=text_version,
            source=source,
        )
    )
    removed = 0
    if not granted:
        from earshot.review.services import delete_pending_snippets

        removed = delete_pending_snippets(session, deployment, customer.id)
    audit.record(
        session,
        actor=actor,
        action="consent.grant" if granted else "consent.withdraw",
        target=customer.id,
        ip=ip,
        details={"text_version": text_version, "source": source, "pending_removed": removed},
    )
    session.flush()
    return customer


def has_consent(session: Session, deployment: Deployment, external_id: str) -> Customer | None:
    """The customer if they have opted in, else None."""
    customer = find_customer(session, deployment, external_id)
    return customer if customer is not None and customer.consented else None
