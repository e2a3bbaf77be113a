"""What Earshot holds about a customer, as one JSON document (GDPR Art. 15 and 20).

Consent history, every snippet (pseudonymous id, dates, status, the masked machine transcript
and reviewers' corrections), recordings still waiting for processing, when each will be deleted,
and which facilities (name and country - never which person) had the snippet assigned.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from earshot.access.models import Facility, User
from earshot.audit import services as audit
from earshot.deployment import Deployment
from earshot.intake.models import Product, Recording
from earshot.privacy.services import CONSOLIDATED, consent_history, find_customer
from earshot.review.models import Assignment, Grade, Snippet
from earshot.vault.services import VaultError

EXPORT_VERSION = "earshot.customer-export/1"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _open(
    deployment: Deployment, session: Session, customer_id: str, label: str, sealed: bytes | None
) -> str | None:
    if not sealed:
        return None
    try:
        return deployment.vault.open_text(session, customer_id, label, sealed)
    except VaultError:
        return None  # shredded: nothing readable is held


def _facilities(session: Session, snippet_id: str) -> list[dict[str, str]]:
    rows = session.execute(
        select(Facility.name, Facility.country)
        .join(User, User.facility_id == Facility.id)
        .join(Assignment, Assignment.reviewer_id == User.id)
        .where(Assignment.snippet_id == snippet_id)
        .distinct()
        .order_by(Facility.name)
    ).all()
    return [{"name": n, "country": c} for n, c in rows]


def _snippet(session: Session, deployment: Deployment, s: Snippet) -> dict[str, Any]:
    settings = deployment.settings
    grades = list(session.scalars(select(Grade).where(Grade.snippet_id == s.id).order_by(Grade.created_at)))
    consolidated_at = max((g.created_at for g in grades), default=None) if s.status in CONSOLIDATED else None
    audio_until = (
        consolidated_at + timedelta(days=settings.retention_after_consolidation_days)
        if consolidated_at
        else None
    )
    all_until = s.created_at + timedelta(days=settings.retention_max_age_days)
    return {
        "id": s.id,
        "recording_id": s.recording_id,
        "created_at": _iso(s.created_at),
        "duration_s": s.duration_s,
        "status": s.status,
        "graded_at": _iso(consolidated_at),
        "audio_held": s.audio_blob_id is not None,
        "audio_deleted_by": _iso(min(audio_until, all_until) if audio_until else all_until),
        "deleted_by": _iso(all_until),
        "masked_categories": [p for p in s.pii_types.split(",") if p],
        "machine_transcript": _open(
            deployment, session, s.customer_id, f"snippet:{s.id}:text", s.transcript_enc
        ),
        "reviewer_transcripts": [
            {
                "at": _iso(g.created_at),
                "accuracy": g.accuracy,
                "transcript": _open(
                    deployment, session, s.customer_id, f"grade:{g.id}:text", g.transcript_enc
                ),
            }
            for g in grades
        ],
        "heard_in_facilities": _facilities(session, s.id),
    }


def customer_export(
    session: Session, deployment: Deployment, external_id: str, *, actor: str, ip: str | None = None
) -> dict[str, Any]:
    """The Art. 15 document. An unknown or erased customer gets a document that says nothing is held."""
    customer = find_customer(session, deployment, external_id)
    if customer is None:
        audit.record(session, actor=actor, action="customer.exported", ip=ip, details={"held": False})
        return {
            "format": EXPORT_VERSION,
            "held": False,
            "customer": None,
            "consent_history": [],
            "recordings": [],
            "snippets": [],
        }
    snippets = [
        _snippet(session, deployment, s)
        for s in session.scalars(
            select(Snippet)
            .where(Snippet.customer_id == customer.id)
            .order_by(Snippet.created_at, Snippet.position)
        )
    ]
    recordings = [
        {
            "id": r.id,
            "product": name,
            "received_at": _iso(r.received_at),
            "captured_at": _iso(r.captured_at),
            "duration_s": round(r.duration_s, 2),
            "locale": r.locale,
            "status": r.status,
            "audio_held": r.raw_blob_id is not None,
            "product_transcript": _open(
                deployment, session, customer.id, f"recording:{r.id}:hypothesis", r.hypothesis_enc
            ),
        }
        for r, name in session.execute(
            select(Recording, Product.name)
            .join(Product, Product.id == Recording.product_id)
            .where(Recording.customer_id == customer.id)
            .order_by(Recording.received_at)
        )
    ]
    first_grant = session.scalar(
        select(func.min(Snippet.created_at)).where(Snippet.customer_id == customer.id)
    )
    audit.record(
        session,
        actor=actor,
        action="customer.exported",
        target=customer.id,
        ip=ip,
        details={"held": True, "snippets": len(snippets), "recordings": len(recordings)},
    )
    return {
        "format": EXPORT_VERSION,
        "held": True,
        "customer": {
            "pseudonym": customer.id,
            "consented": customer.consented,
            "consent_version": customer.consent_version,
            "consent_changed_at": _iso(customer.consent_changed_at),
            "created_at": _iso(customer.created_at),
            "first_snippet_at": _iso(first_grant),
        },
        "consent_history": [r.to_json() for r in consent_history(session, customer.id)],
        "recordings": recordings,
        "snippets": snippets,
        "retention": {
            "audio_days_after_grading": deployment.settings.retention_after_consolidation_days,
            "max_age_days": deployment.settings.retention_max_age_days,
        },
    }
