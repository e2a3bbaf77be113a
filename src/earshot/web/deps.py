"""Request-scoped dependencies shared by every domain's views."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session

from earshot.deployment import Deployment


def get_deployment(request: Request) -> Deployment:
    return request.app.state.deployment


def get_session(request: Request) -> Iterator[Session]:
    """A database session for this request. Views commit explicitly; anything else rolls back."""
    session = request.app.state.deployment.db.sessionmaker()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def client_ip(request: Request) -> str:
    """The client address from the socket, or from X-Forwarded-For only behind a trusted proxy."""
    deployment: Deployment = request.app.state.deployment
    peer = request.client.host if request.client else "0.0.0.0"  # noqa: S104 - a value, not a bind
    trusted = getattr(deployment.settings, "trusted_proxies", None) or []
    if peer in trusted:
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-1]
    return peer
