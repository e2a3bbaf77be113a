"""Customer-rights API for the voice product (service token): consent and withdrawal."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from earshot.deployment import Deployment
from earshot.intake.deps import require_product
from earshot.intake.models import Product
from earshot.privacy.services import CONSENT_TEXT_VERSION, set_consent
from earshot.web.deps import client_ip, get_deployment, get_session

router = APIRouter(tags=["privacy"])


class ConsentIn(BaseModel):
    granted: bool
    text_version: str = Field(default=CONSENT_TEXT_VERSION, max_length=32)


class ConsentOut(BaseModel):
    consented: bool
    text_version: str | None
    changed_at: str | None


@router.put("/api/v1/customers/{customer_id}/consent", response_model=ConsentOut)
def put_consent(
    customer_id: str,
    body: ConsentIn,
    request: Request,
    product: Product = Depends(require_product),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> ConsentOut:
    """Record the customer's opt-in or withdrawal (withdrawal also drops their pending snippets)."""
    customer = set_consent(session, deployment, customer_id, granted=body.granted, text_version=body.text_version,
                           source="api", actor=f"product:{product.id}", ip=client_ip(request))
    session.commit()
    return ConsentOut(consented=customer.consented, text_version=customer.consent_version,
                      changed_at=customer.consent_changed_at.isoformat() if customer.consent_changed_at else None)
