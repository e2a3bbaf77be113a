"""Authentication of voice products by their service token (Authorization: Bearer ...)."""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from earshot.intake.models import Product
from earshot.intake.services import authenticate_product
from earshot.web.deps import get_session


def require_product(request: Request, session: Session = Depends(get_session)) -> Product:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    product = authenticate_product(session, token.strip()) if scheme.lower() == "bearer" else None
    if product is None:
        raise HTTPException(
            401, detail="a valid service token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    return product
