"""Audit API under /api/v1/audit: signed checkpoints, proofs, records, and monitoring alerts.

Checkpoints, proofs and records (pseudonymous ids only) are for leads, admins and the privacy role;
alerts for leads and admins. The public key lets anyone holding a checkpoint verify it offline.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy.orm import Session

from earshot.audit import monitoring, proofs
from earshot.audit.checkpoints import latest_checkpoint, list_checkpoints
from earshot.audit.context import install
from earshot.audit.query import record_json, search_records
from earshot.audit.signing import ORIGIN
from earshot.deployment import Deployment
from earshot.web.deps import client_ip, get_deployment, get_session

try:  # the access domain's single enforcement point
    from earshot.access.deps import require_csrf, require_roles
except ImportError:  # pragma: no cover - fail closed until access control is present

    def require_roles(*roles: str) -> Callable[..., Any]:
        def deny() -> None:
            raise HTTPException(status_code=403, detail="access control is not configured")

        return deny

    def require_csrf() -> None:
        raise HTTPException(status_code=403, detail="access control is not configured")


LOG_READERS = require_roles("lead", "admin", "privacy")
ALERT_READERS = require_roles("lead", "admin")

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def _actor(principal: Any) -> str:
    user_id = getattr(principal, "user_id", None)
    return f"user:{user_id}" if user_id else "unknown"


@router.get("/public-key")
def public_key(
    deployment: Deployment = Depends(get_deployment), _: Any = Depends(LOG_READERS)
) -> dict[str, str]:
    """The Ed25519 key that signs checkpoints (raw 32 bytes, base64) and its id."""
    keys = install(deployment).keys
    return {
        "origin": ORIGIN,
        "algorithm": "Ed25519",
        "key_id": keys.key_id,
        "public_key": base64.b64encode(keys.public_raw()).decode(),
    }


@router.get("/checkpoints/latest")
def checkpoint_latest(
    session: Session = Depends(get_session), _: Any = Depends(LOG_READERS)
) -> dict[str, Any]:
    """The newest signed checkpoint."""
    cp = latest_checkpoint(session)
    if cp is None:
        raise HTTPException(status_code=404, detail="no checkpoint yet")
    return cp.to_json()


@router.get("/checkpoints")
def checkpoints(
    session: Session = Depends(get_session), _: Any = Depends(LOG_READERS)
) -> list[dict[str, Any]]:
    """Every signed checkpoint, oldest first."""
    return [cp.to_json() for cp in list_checkpoints(session)]


@router.get("/proofs/inclusion")
def inclusion(
    seq: int = Query(..., ge=1),
    tree_size: int | None = Query(None, ge=1),
    session: Session = Depends(get_session),
    _: Any = Depends(LOG_READERS),
) -> dict[str, Any]:
    """RFC 9162 inclusion proof of record `seq` in the tree of `tree_size` records (default: current)."""
    try:
        return proofs.inclusion_proof(session, seq, tree_size).to_json()
    except proofs.ProofError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc


@router.get("/proofs/consistency")
def consistency(
    first: int = Query(..., ge=0),
    second: int | None = Query(None, ge=0),
    session: Session = Depends(get_session),
    _: Any = Depends(LOG_READERS),
) -> dict[str, Any]:
    """RFC 9162 consistency proof between tree sizes `first` and `second` (default: current)."""
    try:
        return proofs.consistency_proof(session, first, second).to_json()
    except proofs.ProofError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc


@router.get("/records")
def records(
    actor: str | None = None,
    target: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
    session: Session = Depends(get_session),
    _: Any = Depends(LOG_READERS),
) -> list[dict[str, Any]]:
    """Audit records (pseudonymous ids only), oldest first, filtered; page with `after_seq`."""
    rows = search_records(
        session,
        actor=actor,
        target=target,
        action=action,
        since=since,
        until=until,
        after_seq=after_seq,
        limit=limit,
    )
    return [record_json(r) for r in rows]


def _alert_json(alert: Any) -> dict[str, Any]:
    import json

    return {
        "id": alert.id,
        "severity": alert.severity,
        "rule": alert.rule,
        "actor": alert.actor,
        "target": alert.target,
        "record_seq": alert.record_seq,
        "details": json.loads(alert.details),
        "created_at": alert.created_at.isoformat(),
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
        "acknowledged_by": alert.acknowledged_by,
    }


@router.get("/alerts")
def alerts(
    acknowledged: bool | None = None,
    severity: str | None = None,
    rule: str | None = None,
    actor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    session: Session = Depends(get_session),
    _: Any = Depends(ALERT_READERS),
) -> list[dict[str, Any]]:
    """Monitoring alerts, newest first."""
    found = monitoring.list_alerts(
        session, acknowledged=acknowledged, severity=severity, rule=rule, actor=actor, limit=limit
    )
    return [_alert_json(a) for a in found]


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(
    alert_id: int,
    request: Request,
    session: Session = Depends(get_session),
    principal: Any = Depends(ALERT_READERS),
    _csrf: None = Depends(require_csrf),
) -> dict[str, Any]:
    """Acknowledge an alert (audited)."""
    alert = monitoring.acknowledge(session, alert_id, by=_actor(principal), ip=client_ip(request))
    if alert is None:
        raise HTTPException(status_code=404, detail="no such alert")
    session.commit()
    return _alert_json(alert)
