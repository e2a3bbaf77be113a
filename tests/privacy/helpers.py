"""Building customers, recordings, snippets, reviewers and grades directly (no ML pipeline)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.orm import Session

from earshot.access.models import Facility, User
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.intake.models import Product, Recording
from earshot.intake.services import create_product
from earshot.pipeline.types import DeidSnippet
from earshot.privacy.services import has_consent, set_consent
from earshot.review.models import Assignment, Grade, Snippet
from earshot.review.services import add_snippet


def product(session: Session, name: str = "assistant") -> tuple[Product, str]:
    return create_product(session, name, graders_per_snippet=1)


def recording(
    session: Session,
    dep: Deployment,
    prod: Product,
    external_id: str,
    *,
    received_at: datetime | None = None,
    status: str = "processed",
    raw: bool = False,
) -> Recording:
    """A recording of a consenting customer (consent is granted if not yet)."""
    customer = has_consent(session, dep, external_id) or set_consent(session, dep, external_id, granted=True)
    rec = Recording(
        customer_id=customer.id,
        product_id=prod.id,
        duration_s=3.0,
        status=status,
        received_at=received_at or utcnow(),
    )
    session.add(rec)
    session.flush()
    if raw:
        rec.raw_blob_id = dep.vault.put_blob(session, customer.id, b"\x00\x01" * 800)
    return rec


def snippet(
    session: Session,
    dep: Deployment,
    rec: Recording,
    *,
    text: str = "turn on the lights",
    position: int = 0,
    created_at: datetime | None = None,
) -> Snippet:
    snip = add_snippet(
        session,
        dep,
        rec,
        DeidSnippet(audio=np.zeros(1600, np.float32), start_s=0, end_s=0.1, transcript=text, pii=[]),
        position=position,
        graders_needed=1,
    )
    if created_at is not None:
        snip.created_at = created_at
    session.flush()
    return snip


def reviewer(session: Session, email: str, facility_name: str = "Dublin 1", country: str = "IE") -> User:
    facility = session.query(Facility).filter_by(name=facility_name).one_or_none()
    if facility is None:
        facility = Facility(name=facility_name, country=country, networks="10.0.0.0/8")
        session.add(facility)
        session.flush()
    user = User(email=email, role="reviewer", facility_id=facility.id, status="active")
    session.add(user)
    session.flush()
    return user


def lease(session: Session, snip: Snippet, user: User, *, minutes: float = 10) -> Assignment:
    now = utcnow()
    a = Assignment(
        snippet_id=snip.id,
        reviewer_id=user.id,
        recording_id=snip.recording_id,
        customer_id=snip.customer_id,
        status="active",
        assigned_at=now,
        lease_expires_at=now + timedelta(minutes=minutes),
    )
    session.add(a)
    snip.in_flight += 1
    session.flush()
    return a


def grade(
    session: Session,
    dep: Deployment,
    snip: Snippet,
    user: User,
    *,
    text: str = "turn on the light",
    at: datetime | None = None,
    final: bool = True,
) -> Grade:
    """A completed assignment and its grade; `final` marks the snippet graded."""
    a = lease(session, snip, user)
    a.status = "completed"
    g = Grade(
        snippet_id=snip.id,
        assignment_id=a.id,
        reviewer_id=user.id,
        accuracy=4,
        transcript_enc=b"",
        created_at=at or utcnow(),
    )
    session.add(g)
    session.flush()
    g.transcript_enc = dep.vault.seal_text(session, snip.customer_id, f"grade:{g.id}:text", text)
    snip.grades_done += 1
    snip.in_flight = max(0, snip.in_flight - 1)
    if final:
        snip.status = "graded"
    session.flush()
    return g
