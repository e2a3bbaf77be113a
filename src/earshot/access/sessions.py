"""Server-side sessions (ASVS 5.0 V7): random tokens, only their SHA-256 stored, idle and absolute timeouts.

The cookie holds 256 random bits; the database row is keyed by the token's SHA-256, so a leaked database
does not yield usable sessions (ASVS 7.2.3). A session is created afresh (new token) at every change of
authentication level (ASVS 7.2.4), ends after `session_idle_minutes` without use and after
`session_absolute_hours` in any case (7.3.1, 7.3.2), and every session of an account ends when the account is
disabled or its role changes (7.4.2). The CSRF token is an HMAC of the session id: it needs no storage and
changes with the session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from earshot.access.models import WebSession
from earshot.config import Settings
from earshot.database import utcnow

COOKIE_NAME = "earshot_session"  # plain-HTTP loopback (the embedded demo) only
SECURE_COOKIE_NAME = "__Host-earshot_session"  # everywhere else: Secure, host-only, path / (ASVS 3.3.1)
LAST_SEEN_GRANULARITY = timedelta(seconds=30)  # fewer writes; idle accuracy of 30 s is plenty

STAGE_ENROL = "enrol"  # invitation accepted and password set, MFA not yet enrolled
STAGE_PASSWORD = "password"  # noqa: S105 - password verified, second factor pending
STAGE_FULL = "full"  # fully authenticated


def token_id(token: str) -> str:
    """The row id for a cookie token (its SHA-256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def ua_hash(user_agent: str | None) -> str:
    return hashlib.sha256((user_agent or "").encode()).hexdigest()


def create(
    db: Session,
    settings: Settings,
    *,
    user_id: str,
    stage: str,
    ip: str,
    user_agent: str | None,
    mfa_method: str | None = None,
) -> tuple[str, WebSession]:
    """A new session row and the cookie token for it (the token itself is never stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    lifetime = timedelta(hours=settings.session_absolute_hours)
    if stage != STAGE_FULL:  # half-way states (enrolment, awaiting MFA) are short-lived
        lifetime = min(lifetime, timedelta(minutes=30))
    row = WebSession(
        id=token_id(token),
        user_id=user_id,
        stage=stage,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        ip=ip,
        user_agent_hash=ua_hash(user_agent),
        auth_at=now,
        mfa_method=mfa_method,
    )
    db.add(row)
    db.flush()
    return token, row


def end(db: Session, row: WebSession, reason: str) -> None:
    if row.ended_at is None:
        row.ended_at = utcnow()
        row.end_reason = reason
        db.flush()


def end_all(db: Session, user_id: str, reason: str, *, except_id: str | None = None) -> int:
    """End every open session of `user_id` (disable, role change, password change)."""
    stmt = (
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    )
    if except_id is not None:
        stmt = stmt.where(WebSession.id != except_id)
    result = db.execute(stmt)
    return int(result.rowcount or 0)


def expiry_reason(row: WebSession, settings: Settings, now: datetime | None = None) -> str | None:
    """Why `row` is no longer valid ('ended', 'absolute_timeout', 'idle_timeout'), or None if it is."""
    now = now or utcnow()
    if row.ended_at is not None:
        return "ended"
    if now >= row.expires_at:
        return "absolute_timeout"
    if now - row.last_seen_at >= timedelta(minutes=settings.session_idle_minutes):
        return "idle_timeout"
    return None


def lookup(db: Session, settings: Settings, token: str | None) -> tuple[WebSession | None, str | None]:
    """(live session, None) or (None, reason). Expired sessions are ended on the way."""
    if not token or len(token) > 100:
        return None, "no_session"
    row = db.get(WebSession, token_id(token))
    if row is None:
        return None, "unknown_session"
    reason = expiry_reason(row, settings)
    if reason is not None:
        if reason != "ended":
            end(db, row, reason)
        return None, reason
    return row, None


def touch(row: WebSession) -> bool:
    """Record activity (idle timeout); returns True if the row changed and needs a commit."""
    now = utcnow()
    if now - row.last_seen_at >= LAST_SEEN_GRANULARITY:
        row.last_seen_at = now
        return True
    return False


def open_sessions(
    db: Session, settings: Settings, user_id: str, *, stage: str = STAGE_FULL
) -> list[WebSession]:
    """The user's sessions at `stage` that are still live."""
    rows = db.scalars(
        select(WebSession).where(
            WebSession.user_id == user_id, WebSession.ended_at.is_(None), WebSession.stage == stage
        )
    ).all()
    return [r for r in rows if expiry_reason(r, settings) is None]


def csrf_for(secret: bytes, session_id: str) -> str:
    """The CSRF token of a session: HMAC-SHA256(server secret, session id), base64url."""
    mac = hmac.new(secret, b"csrf|" + session_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_matches(secret: bytes, session_id: str, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(csrf_for(secret, session_id).encode(), presented.encode())
