"""Customer-rights API for the voice product (its service token): consent, erasure, export.

The product calls these on the customer's behalf, so exercising a right is as easy as clicking
in the product (Art. 12(2)); none of them needs a staff account.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from earshot.access.deps import Principal, require_roles
from earshot.audit.services import parse_time
from earshot.deployment import Deployment
from earshot.intake.deps import require_product
from earshot.intake.models import Product
from earshot.privacy.erasure import erase_customer, erasure_report, purge_erasure
from earshot.privacy.export import customer_export
from earshot.privacy.services import consent_state, set_consent
from earshot.privacy.tombstones import tombstones
from earshot.web.deps import client_ip, get_deployment, get_session

router = APIRouter(tags=["privacy"])

CustomerId = str


class ConsentIn(BaseModel):
    granted: bool
    text_version: str | None = Field(
        default=None,
        max_length=32,
        description="Version of the consent text shown (default: the current one)",
    )


class ConsentEventOut(BaseModel):
    action: str
    text_version: str | None
    source: str
    at: str


class ConsentOut(BaseModel):
    consented: bool
    text_version: str | None
    changed_at: str | None
    history: list[ConsentEventOut] = []


class ErasureOut(BaseModel):
    erasure_id: str | None = None
    status: str = Field(description="shredded (unreadable; rows being removed) | purged | not_held")
    shredded_at: str | None = None
    purged_at: str | None = None
    snippets: int = 0
    recordings: int = 0
    blobs: int = 0


def _check_id(customer_id: str) -> str:
    if not 1 <= len(customer_id) <= 256:
        raise HTTPException(422, detail="customer id must be 1 to 256 characters")
    return customer_id


def _consent_out(session: Session, deployment: Deployment, customer_id: str) -> ConsentOut:
    return ConsentOut(**consent_state(session, deployment, customer_id).to_json())


@router.put("/api/v1/customers/{customer_id}/consent", response_model=ConsentOut)
def put_consent(
    customer_id: CustomerId,
    body: ConsentIn,
    request: Request,
    product: Product = Depends(require_product),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> ConsentOut:
    """Record the customer's opt-in or withdrawal (withdrawal stops intake and drops pending snippets)."""
    set_consent(
        session,
        deployment,
        _check_id(customer_id),
        granted=body.granted,
        text_version=body.text_version,
        source="api",
        actor=f"product:{product.id}",
        ip=client_ip(request),
    )
    session.commit()
    return _consent_out(session, deployment, customer_id)


@router.get("/api/v1/customers/{customer_id}/consent", response_model=ConsentOut)
def get_consent(
    customer_id: CustomerId,
    product: Product = Depends(require_product),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> ConsentOut:
    """Current consent state and its history (an unknown customer has not consented)."""
    return _consent_out(session, deployment, _check_id(customer_id))


@router.delete(
    "/api/v1/customers/{customer_id}",
    response_model=ErasureOut,
    responses={202: {"model": ErasureOut, "description": "Shredded; rows and blobs are being removed"}},
)
def delete_customer(
    customer_id: CustomerId,
    request: Request,
    background: BackgroundTasks,
    product: Product = Depends(require_product),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Any:
    """Erase everything held about the customer (Art. 17) by destroying their data key.

    202: from this answer on nothing of theirs can be decrypted anywhere; rows and blobs are being
    removed (follow with GET /api/v1/erasures/{erasure_id}). 200 with status `not_held`: nothing is held.
    """
    report = erase_customer(
        session,
        deployment,
        _check_id(customer_id),
        actor=f"product:{product.id}",
        source="api",
        ip=client_ip(request),
    )
    if report is None:
        session.rollback()
        return ErasureOut(status="not_held")
    session.commit()
    background.add_task(purge_erasure, deployment, report.erasure_id)
    return JSONResponse(ErasureOut(**report.to_json()).model_dump(), status_code=202)


@router.get("/api/v1/erasures/{erasure_id}", response_model=ErasureOut)
def get_erasure(
    erasure_id: str,
    product: Product = Depends(require_product),
    session: Session = Depends(get_session),
) -> ErasureOut:
    """The receipt of an erasure: when the key was destroyed, when everything was removed, counts."""
    report = erasure_report(session, erasure_id[:64])
    if report is None:
        raise HTTPException(404, detail="no such erasure")
    return ErasureOut(**report.to_json())


@router.get("/api/v1/customers/{customer_id}/export")
def get_export(
    customer_id: CustomerId,
    request: Request,
    product: Product = Depends(require_product),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> JSONResponse:
    """Everything held about the customer as one JSON document (Art. 15 access, Art. 20 portability)."""
    doc = customer_export(
        session, deployment, _check_id(customer_id), actor=f"product:{product.id}", ip=client_ip(request)
    )
    session.commit()
    return JSONResponse(doc, headers={"Cache-Control": "no-store"})


class TombstoneOut(BaseModel):
    snippet_id: str
    reason: str = Field(description="erasure | retention | withdrawal")
    erased_at: str


@router.get("/api/v1/erased-snippets", response_model=list[TombstoneOut])
def get_tombstones(
    since: str | None = None,
    principal: Principal = Depends(require_roles("admin", "privacy")),
    session: Session = Depends(get_session),
) -> list[TombstoneOut]:
    """Ids of snippets deleted since `since` (ISO 8601): drop rows with these ids from exported datasets."""
    try:
        when = parse_time(since) if since else None
    except ValueError:
        raise HTTPException(422, detail="since must be an ISO 8601 time") from None
    return [TombstoneOut(**t) for t in tombstones(session, since=when)]
