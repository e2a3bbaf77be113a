"""The one enforcement point for staff requests (ASVS 5.0 V7, V8): session, MFA, account, place, role.

`require_roles(...)` resolves the session cookie to a `Principal` and refuses, in this order: no live
session (401; HTML pages get a 303 to /login) — which covers idle and absolute timeouts, ended sessions and
sign-ins whose second factor is not done; a disabled account (401); a reviewer or lead outside their
facility's networks or country (403); a role not allowed by `earshot.access.policy` (403). Every refusal of
a request that carried a session is written to the audit log as `authz.denied`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from fastapi import HTTPException, Request, Response
from sqlalchemy.orm import Session

from earshot.access import policy, sessions
from earshot.access.facilities import FACILITY_ROLES, address_allowed
from earshot.access.models import Facility, User, WebSession
from earshot.audit.services import record as audit
from earshot.config import Settings
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.web.deps import client_ip

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Principal:
    """Who is calling: the account, its role, the session (row id) and the facility, if any."""

    user_id: str
    role: str
    session_id: str
    facility_id: str | None


def _deployment(request: Request) -> Deployment:
    return request.app.state.deployment


def wants_html(request: Request) -> bool:
    """Browser pages get redirects; the JSON API gets status codes."""
    return not request.url.path.startswith("/api/")


def _route_key(request: Request) -> tuple[str, str]:
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    method = "GET" if request.method == "HEAD" else request.method
    return method, path


def _refuse(
    request: Request,
    db: Session,
    *,
    status: int,
    reason: str,
    actor: str | None,
    message: str,
    log: bool = True,
) -> HTTPException:
    """Record the refusal (committed on its own) and build the response to raise."""
    method, path = _route_key(request)
    if log:
        audit(
            db,
            actor=actor or "anonymous",
            action="authz.denied",
            outcome="denied",
            ip=client_ip(request),
            target=None,
            details={"method": method, "route": path, "reason": reason},
        )
    db.commit()
    if status == 401 and wants_html(request):
        target = "/login"
        if request.method == "GET" and request.url.path not in ("/", "/login"):
            target += "?next=" + quote(request.url.path, safe="/")
        return HTTPException(status_code=303, detail="sign in first", headers={"Location": target})
    if status == 401:
        return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Cookie"})
    return HTTPException(status_code=status, detail=message)


def load_session(request: Request, db: Session) -> tuple[WebSession | None, str | None]:
    """The live session for the request's cookie (any stage), or (None, reason)."""
    settings = _deployment(request).settings
    return sessions.lookup(db, settings, request.cookies.get(cookie_name(request)))


def require_roles(*roles: str) -> Callable[..., Principal]:
    """FastAPI dependency factory: the caller must hold one of `roles` (and the policy table must agree)."""
    declared = tuple(roles)
    unknown = set(declared) - set(policy.ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def dependency(request: Request) -> Principal:
        dep = _deployment(request)
        with dep.db.session() as db:
            principal = authorise(request, db, dep.settings, declared)
            request.state.principal = principal
            return principal

    dependency.__name__ = f"require_roles_{'_'.join(declared) or 'none'}"
    return dependency


def authorise(request: Request, db: Session, settings: Settings, declared: tuple[str, ...]) -> Principal:
    """The checks behind `require_roles`, in one place (also used by the matrix test)."""
    had_cookie = cookie_name(request) in request.cookies
    row, reason = load_session(request, db)
    if row is None:
        # Requests with no cookie at all are plain anonymous traffic: logged only on the API.
        raise _refuse(
            request,
            db,
            status=401,
            reason=reason or "no_session",
            actor=None,
            message="Sign in first.",
            log=had_cookie or not wants_html(request),
        )
    if row.stage != sessions.STAGE_FULL:
        raise _refuse(
            request,
            db,
            status=401,
            reason="mfa_incomplete",
            actor=row.user_id,
            message="Finish signing in (second factor) first.",
        )
    user = db.get(User, row.user_id)
    if user is None or user.status != "active":
        if user is not None:
            sessions.end(db, row, "account_inactive")
        raise _refuse(
            request,
            db,
            status=401,
            reason="account_inactive",
            actor=row.user_id,
            message="This account is not active.",
        )
    ip = client_ip(request)
    if user.role in FACILITY_ROLES:
        facility = db.get(Facility, user.facility_id) if user.facility_id else None
        ok, why = address_allowed(facility, ip, settings)
        if not ok:
            raise _refuse(
                request,
                db,
                status=403,
                reason=why,
                actor=user.id,
                message="Access from this network is not allowed for your account.",
            )
    method, path = _route_key(request)
    allowed = policy.allowed_roles(method, path, declared)
    if user.role not in allowed:
        raise _refuse(
            request,
            db,
            status=403,
            reason=f"role {user.role} not allowed",
            actor=user.id,
            message="Your role does not allow this.",
        )
    if sessions.touch(row):
        db.flush()
    db.commit()
    request.state.web_session_id = row.id
    return Principal(user_id=user.id, role=user.role, session_id=row.id, facility_id=user.facility_id)


def require_recent_auth(request: Request) -> None:
    """Sensitive actions need an authentication within `reauth_minutes` (ASVS 7.5.1); after require_roles."""
    dep = _deployment(request)
    with dep.db.session() as db:
        row, _ = load_session(request, db)
        if row is None:
            raise HTTPException(status_code=401, detail="Sign in first.")
        age = (utcnow() - (row.auth_at or row.created_at)).total_seconds() / 60
        if age <= dep.settings.reauth_minutes:
            return
    if wants_html(request):
        back = request.url.path if request.method == "GET" else _same_site_referer(request)
        raise HTTPException(
            status_code=303,
            detail="confirm it is you",
            headers={"Location": "/reauth?next=" + quote(back, safe="/")},
        )
    raise HTTPException(
        status_code=403,
        detail="Re-authentication required: POST /api/v1/session/reauth with your password and a code.",
        headers={"X-Reauth-Required": "1"},
    )


def _same_site_referer(request: Request) -> str:
    ref = urlsplit(request.headers.get("referer", ""))
    path = ref.path if ref.path.startswith("/") and not ref.path.startswith("//") else "/"
    return path or "/"


def require_sensitive(*roles: str) -> Callable[..., Principal]:
    """`require_roles` plus a recent (re-)authentication, for account and configuration changes."""
    inner = require_roles(*roles)

    def dependency(request: Request) -> Principal:
        principal = inner(request)
        require_recent_auth(request)
        return principal

    dependency.__name__ = inner.__name__ + "_recent"
    return dependency


# -- CSRF ----------------------------------------------------------------------------------------


def _csrf_secret(request: Request) -> bytes:
    return _deployment(request).keys.secret("csrf")


def csrf_token(request: Request) -> str:
    """The CSRF token for the current session ('' without one), for forms and the X-CSRF-Token header."""
    session_id = getattr(request.state, "new_session_id", None)
    if session_id is None:
        token = request.cookies.get(cookie_name(request))
        if not token:
            return ""
        session_id = sessions.token_id(token)
    return sessions.csrf_for(_csrf_secret(request), session_id)


def _same_origin(request: Request, origin: str) -> bool:
    settings = _deployment(request).settings
    base = urlsplit(settings.base_url)
    mine = {f"{base.scheme}://{base.netloc}", f"{request.url.scheme}://{request.url.netloc}"}
    return origin in mine


async def require_csrf(request: Request) -> None:
    """Refuse state-changing requests without the session's CSRF token (ASVS 3.5.1), compared in constant
    time, and any cross-site request (Origin / Sec-Fetch-Site) as a second line of defence."""
    if request.method in SAFE_METHODS:
        return
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(status_code=403, detail="Cross-site request refused.")
    origin = request.headers.get("origin")
    # With Referrer-Policy no-referrer, browsers send "Origin: null" on same-site form posts.
    if origin and origin != "null" and not _same_origin(request, origin):
        raise HTTPException(status_code=403, detail="Cross-origin request refused.")
    cookie = request.cookies.get(cookie_name(request))
    presented = request.headers.get("x-csrf-token")
    if presented is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            presented = value if isinstance(value, str) else None
    if not cookie or not sessions.csrf_matches(_csrf_secret(request), sessions.token_id(cookie), presented):
        raise HTTPException(
            status_code=403,
            detail="CSRF token missing or invalid: reload the page and try again.",
        )


# -- cookies -------------------------------------------------------------------------------------


def cookie_secure(request: Request) -> bool:
    """Secure cookies everywhere except plain-HTTP loopback (the embedded demo)."""
    settings = _deployment(request).settings
    if urlsplit(settings.base_url).scheme == "https" or request.url.scheme == "https":
        return True
    return request.url.hostname not in ("127.0.0.1", "localhost", "::1")


def cookie_name(request: Request) -> str:
    """`__Host-` prefixed wherever the cookie is Secure, so a sibling host cannot plant or overwrite it."""
    return sessions.SECURE_COOKIE_NAME if cookie_secure(request) else sessions.COOKIE_NAME


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """HttpOnly, SameSite=Strict, path /, Secure outside loopback (ASVS 3.3.1, 3.3.2, 3.3.4)."""
    response.set_cookie(
        cookie_name(request),
        token,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request),
        path="/",
    )
    request.state.new_session_id = sessions.token_id(token)


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        cookie_name(request), path="/", httponly=True, samesite="strict", secure=cookie_secure(request)
    )
