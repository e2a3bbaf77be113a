"""What Earshot holds about a customer, as one JSON document (GDPR Art. 15 and 20)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.access.models import Facility, User
from earshot.audit import services as audit
from earshot.deployment import Deployment
from earshot.privacy.models import ConsentEvent
from earshot.privacy.services import find_customer
from earshot.review.models import Assignment, Grade, Snippet
from earshot.vault.services import VaultError


def customer_export(
    session: Session, deployment: Deployment, external_id: str, *, actor: str, ip: str | None = None
) -> dict[str, Any] | None:
    """Consent history, snippets with transcripts, and which facilities (not who) heard them."""
    customer = find_customer(session, deployment, external_id)
    if customer is None:
        return None
    vault = deployment.vault
    consent = [
        {"action": e.action, "text_version": e.text_version, "source": e.source, "at": e.at.isoformat()}
        for e in session.scalars(
            select(ConsentEvent).where(ConsentEvent.customer_id == customer.id).order_by(ConsentEvent.at)
        )
    ]
    snippets = []
    for s in session.scalars(select(Snippet).where(Snippet.customer_id == customer.id).order_by(Snippet.created_at)):
        try:
            machine = vault.open_text(session, customer.id, f"snippet:{s.id}:text", s.transcript_enc)
            human = [
                vault.open_text(session, customer.id, f"grade:{g.id}:text", g.transcript_enc)
                for g in session.scalars(select(Grade).where(Grade.snippet_id == s.id))
            ]
        except VaultError:
            machine, human = None, []
        facilities = session.execute(
            select(Facility.name, Facility.country)
            .join(User, User.facility_id == Facility.id)
            .join(Assignment, Assignment.reviewer_id == User.id)
            .where(Assignment.snippet_id == s.id)
            .distinct()
        ).all()
        snippets.append({
            "id": s.id,
            "created_at": s.created_at.isoformat(),
            "duration_s": s.duration_s,
            "status": s.status,
            "machine_transcript": machine,
            "reviewer_transcripts": human,
            "heard_in_facilities": [{"name": n, "country": c} for n, c in facilities],
        })
    audit.record(session, actor=actor, action="customer.exported", target=customer.id, ip=ip,
                 details={"snippets": len(snippets)})
    return {
        "customer": {"pseudonym": customer.id, "consented": customer.consented,
                     "consent_version": customer.consent_version, "created_at": customer.created_at.isoformat()},
        "consent_history": consent,
        "snippets": snippets,
    }
