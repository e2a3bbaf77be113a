"""Sign-in, enrolment, sessions, passkeys, own account and account administration: HTML and JSON API.

Who may call which route is decided in `earshot.access.policy` and enforced by `earshot.access.deps`;
the half-way steps of enrolment and sign-in (a session whose second factor is not done yet) are checked by
`_step_session` here and can do nothing but finish that step.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Depends, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.access import services, sessions, totp
from earshot.access import webauthn as passkeys
from earshot.access.deps import (
    Principal,
    clear_session_cookie,
    csrf_token,
    load_session,
    require_csrf,
    require_recent_auth,
    require_roles,
    require_sensitive,
    set_session_cookie,
)
from earshot.access.facilities import FacilityError, create_facility
from earshot.access.models import Facility, RecoveryCode, User, WebSession
from earshot.access.policy import ROLE_HOME, ROLES
from earshot.access.services import AccessError
from earshot.access.vetting import KINDS, VettingError, record_vetting
from earshot.audit.services import record as audit
from earshot.deployment import Deployment
from earshot.web.deps import client_ip, get_session
from earshot.web.templating import templates

log = logging.getLogger("earshot.access")
router = APIRouter(tags=["access"])
ALL = ROLES

# The shared layout (base.html) renders the logout form on every page, whatever the view passed.
templates.env.globals["session_csrf"] = csrf_token

NO_STORE = {"Cache-Control": "no-store"}


# -- helpers -------------------------------------------------------------------------------------


def _render(
    request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
) -> Response:
    ctx = {"csrf_token": csrf_token(request), "principal": getattr(request.state, "principal", None)}
    ctx.update(context or {})
    return templates.TemplateResponse(request, f"access/{name}", ctx, status_code=status, headers=NO_STORE)


def _safe_next(value: str | None, default: str = "/") -> str:
    """Only same-site relative paths (no open redirect, ASVS 3.7.2)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def _same_origin_only(request: Request) -> None:
    """Sign-in forms have no session yet to bind a CSRF token to; refuse cross-site posts instead."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(status_code=403, detail="Cross-site request refused.")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        deployment: Deployment = request.app.state.deployment
        base = urlsplit(deployment.settings.base_url)
        if origin not in {f"{base.scheme}://{base.netloc}", f"{request.url.scheme}://{request.url.netloc}"}:
            raise HTTPException(status_code=403, detail="Cross-origin request refused.")


def _step_session(request: Request, db: Session, *stages: str) -> tuple[WebSession, User] | None:
    """The caller's live session if it is at one of `stages`, with its account."""
    row, _ = load_session(request, db)
    if row is None or row.stage not in stages:
        return None
    user = db.get(User, row.user_id)
    if user is None or user.status == "disabled":
        return None
    return row, user


def _full_session(request: Request, db: Session) -> tuple[WebSession, User] | None:
    found = _step_session(request, db, sessions.STAGE_FULL)
    if found is None or found[1].status != "active":
        return None
    return found


def _home(role: str) -> str:
    return ROLE_HOME.get(role, "/account")


def _ua(request: Request) -> str | None:
    return request.headers.get("user-agent")


def _api_error(exc: AccessError) -> JSONResponse:
    return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=NO_STORE)


# -- home, sign-in, sign-out ---------------------------------------------------------------------


@router.get("/", include_in_schema=False)
def home(request: Request, db: Session = Depends(get_session)) -> Response:
    """Send the signed-in person to their role's page, anyone else to /login."""
    found = _full_session(request, db)
    db.commit()
    if found is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(_home(found[1].role), status_code=303)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: str | None = None, db: Session = Depends(get_session)) -> Response:
    row, _ = load_session(request, db)
    db.commit()
    if row is not None and row.stage == sessions.STAGE_FULL:
        return RedirectResponse(_safe_next(next), status_code=303)
    if row is not None and row.stage == sessions.STAGE_PASSWORD:
        return RedirectResponse("/login/mfa", status_code=303)
    return _render(request, "login.html", {"next": _safe_next(next, "")})


@router.post("/login", include_in_schema=False)
def login_submit(
    request: Request,
    email: str = Form(..., max_length=254),
    password: str = Form(..., max_length=1024),
    next: str = Form("", max_length=500),
    _origin: None = Depends(_same_origin_only),
    db: Session = Depends(get_session),
) -> Response:
    """First factor. On success a short-lived half-way session is created; the second factor follows."""
    dep: Deployment = request.app.state.deployment
    ip = client_ip(request)
    try:
        user = services.check_password_login(db, dep.settings, dep.keys, email, password, ip=ip)
    except AccessError as exc:
        db.commit()  # keep the throttle counters and the audit record
        return _render(
            request,
            "login.html",
            {"error": exc.message, "email": email[:254], "next": _safe_next(next, "")},
            status=exc.status,
        )
    old, _ = load_session(request, db)
    if old is not None:
        sessions.end(db, old, "rotated")
    token, _row = sessions.create(
        db, dep.settings, user_id=user.id, stage=sessions.STAGE_PASSWORD, ip=ip, user_agent=_ua(request)
    )
    db.commit()
    target = "/login/mfa" + (f"?next={_safe_next(next)}" if _safe_next(next, "") else "")
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, token)
    return response


@router.get("/login/mfa", response_class=HTMLResponse, include_in_schema=False)
def mfa_page(request: Request, next: str | None = None, db: Session = Depends(get_session)) -> Response:
    dep: Deployment = request.app.state.deployment
    found = _step_session(request, db, sessions.STAGE_PASSWORD)
    db.commit()
    if found is None:
        return RedirectResponse("/login", status_code=303)
    _row, user = found
    return _render(
        request,
        "mfa.html",
        {
            "next": _safe_next(next, ""),
            "passkey_only": services.requires_passkey(dep.settings, user.role),
            "has_totp": user.totp_confirmed_at is not None,
            "has_passkey": bool(passkeys.passkeys_of(db, user.id)),
        },
    )


def _finish_login(
    request: Request, db: Session, user: User, method: str, previous: WebSession | None, target: str
) -> Response:
    dep: Deployment = request.app.state.deployment
    token, _ = services.start_full_session(
        db,
        dep.settings,
        user,
        ip=client_ip(request),
        user_agent=_ua(request),
        method=method,
        previous=previous,
    )
    db.commit()
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, token)
    return response


@router.post("/login/mfa", include_in_schema=False)
def mfa_submit(
    request: Request,
    code: str = Form("", max_length=20),
    recovery_code: str = Form("", max_length=64),
    next: str = Form("", max_length=500),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    """Second factor: a TOTP code or a recovery code; then a new session id (ASVS 7.2.4)."""
    dep: Deployment = request.app.state.deployment
    found = _step_session(request, db, sessions.STAGE_PASSWORD)
    if found is None:
        db.commit()
        return RedirectResponse("/login", status_code=303)
    row, user = found
    ip = client_ip(request)
    try:
        services.check_location(db, dep.settings, user, ip, action="auth.login")
        method = services.check_second_factor(
            db,
            dep.settings,
            dep.keys,
            user,
            totp_code=code or None,
            recovery_code=recovery_code or None,
            ip=ip,
        )
        return _finish_login(request, db, user, method, row, _safe_next(next, _home(user.role)))
    except AccessError as exc:
        db.commit()
        return _render(
            request,
            "mfa.html",
            {
                "error": exc.message,
                "next": _safe_next(next, ""),
                "passkey_only": services.requires_passkey(dep.settings, user.role),
                "has_totp": user.totp_confirmed_at is not None,
                "has_passkey": bool(passkeys.passkeys_of(db, user.id)),
            },
            status=exc.status,
        )


@router.post("/logout", include_in_schema=False)
def logout(
    request: Request, _csrf: None = Depends(require_csrf), db: Session = Depends(get_session)
) -> Response:
    row, _ = load_session(request, db)
    if row is not None:
        sessions.end(db, row, "logout")
        audit(db, actor=row.user_id, action="auth.logout", ip=client_ip(request))
    db.commit()
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(request, response)
    return response


# -- enrolment -----------------------------------------------------------------------------------


def _enrol_context(request: Request, db: Session, user: User) -> dict[str, Any]:
    dep: Deployment = request.app.state.deployment
    passkey_only = services.requires_passkey(dep.settings, user.role)
    ctx: dict[str, Any] = {"passkey_only": passkey_only, "email": user.email}
    if not passkey_only:
        secret = services.totp_begin(db, dep.keys, user)
        uri = totp.provisioning_uri(secret, user.email)
        ctx.update(
            secret=secret,
            secret_grouped=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            uri=uri,
            qr_svg=totp.qr_svg(uri),
        )
    return ctx


@router.get("/enrol/mfa", response_class=HTMLResponse, include_in_schema=False)
def enrol_mfa_page(request: Request, db: Session = Depends(get_session)) -> Response:
    found = _step_session(request, db, sessions.STAGE_ENROL)
    if found is None:
        db.commit()
        return RedirectResponse("/", status_code=303)
    ctx = _enrol_context(request, db, found[1])
    db.commit()
    return _render(request, "enrol_mfa.html", ctx)


@router.post("/enrol/mfa", include_in_schema=False)
def enrol_mfa_submit(
    request: Request,
    code: str = Form(..., max_length=20),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    """Confirm the authenticator app with a first code; enrolment is then complete."""
    dep: Deployment = request.app.state.deployment
    found = _step_session(request, db, sessions.STAGE_ENROL)
    if found is None:
        db.commit()
        return RedirectResponse("/", status_code=303)
    row, user = found
    if services.requires_passkey(dep.settings, user.role) or not services.totp_confirm(
        db, dep.keys, user, code, ip=client_ip(request)
    ):
        ctx = _enrol_context(request, db, user)
        ctx["error"] = "That code is not valid. Check the time on your device and try the current code."
        db.commit()
        return _render(request, "enrol_mfa.html", ctx, status=400)
    return _finish_login(request, db, user, "totp", row, "/enrol/done")


@router.get("/enrol/done", response_class=HTMLResponse, include_in_schema=False)
def enrol_done(request: Request, db: Session = Depends(get_session)) -> Response:
    """Show the ten recovery codes once, right after enrolment."""
    dep: Deployment = request.app.state.deployment
    found = _full_session(request, db)
    if found is None:
        db.commit()
        return RedirectResponse("/login", status_code=303)
    _row, user = found
    codes: list[str] = []
    if db.scalar(select(RecoveryCode.id).where(RecoveryCode.user_id == user.id).limit(1)) is None:
        codes = services.new_recovery_codes(db, dep.keys, user)
    db.commit()
    return _render(request, "enrol_done.html", {"codes": codes, "home": _home(user.role)})


@router.get("/enrol/{token}", response_class=HTMLResponse, include_in_schema=False)
def enrol_page(token: str, request: Request, db: Session = Depends(get_session)) -> Response:
    inv = services.find_invitation(db, token)
    if inv is None:
        return _render(request, "enrol_invalid.html", status=404)
    user = db.get(User, inv.user_id)
    return _render(request, "enrol.html", {"email": user.email if user else "", "token": token})


@router.post("/enrol/{token}", include_in_schema=False)
def enrol_submit(
    token: str,
    request: Request,
    password: str = Form(..., max_length=1024),
    password_again: str = Form(..., max_length=1024),
    _origin: None = Depends(_same_origin_only),
    db: Session = Depends(get_session),
) -> Response:
    """Use the link once: set the password; MFA enrolment follows in a short-lived enrolment session."""
    dep: Deployment = request.app.state.deployment
    inv = services.find_invitation(db, token)
    if inv is None:
        return _render(request, "enrol_invalid.html", status=404)
    user = db.get(User, inv.user_id)
    email = user.email if user else ""
    if password != password_again:
        return _render(
            request,
            "enrol.html",
            {"email": email, "token": token, "error": "The two passwords differ."},
            status=422,
        )
    try:
        user = services.accept_invitation(db, token, password, ip=client_ip(request))
    except AccessError as exc:
        db.rollback()
        if exc.status == 404:
            return _render(request, "enrol_invalid.html", status=404)
        return _render(
            request, "enrol.html", {"email": email, "token": token, "error": exc.message}, status=exc.status
        )
    old, _ = load_session(request, db)
    if old is not None:
        sessions.end(db, old, "rotated")
    new_token, _ = sessions.create(
        db,
        dep.settings,
        user_id=user.id,
        stage=sessions.STAGE_ENROL,
        ip=client_ip(request),
        user_agent=_ua(request),
    )
    db.commit()
    response = RedirectResponse("/enrol/mfa", status_code=303)
    set_session_cookie(request, response, new_token)
    return response


# -- re-authentication and own account -------------------------------------------------------------


@router.get("/reauth", response_class=HTMLResponse, include_in_schema=False)
def reauth_page(
    request: Request, next: str | None = None, principal: Principal = Depends(require_roles(*ALL))
) -> Response:
    return _render(request, "reauth.html", {"next": _safe_next(next)})


@router.post("/reauth", include_in_schema=False)
def reauth_submit(
    request: Request,
    password: str = Form(..., max_length=1024),
    code: str = Form("", max_length=20),
    next: str = Form("/", max_length=500),
    principal: Principal = Depends(require_roles(*ALL)),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    dep: Deployment = request.app.state.deployment
    user = db.get(User, principal.user_id)
    row = db.get(WebSession, principal.session_id)
    assert user is not None and row is not None
    try:
        services.reauthenticate(
            db,
            dep.settings,
            dep.keys,
            user,
            row,
            password=password,
            totp_code=code or None,
            ip=client_ip(request),
        )
    except AccessError as exc:
        db.commit()
        return _render(
            request, "reauth.html", {"next": _safe_next(next), "error": exc.message}, status=exc.status
        )
    db.commit()
    return RedirectResponse(_safe_next(next), status_code=303)


@router.get("/account", response_class=HTMLResponse, include_in_schema=False)
def account_page(
    request: Request, principal: Principal = Depends(require_roles(*ALL)), db: Session = Depends(get_session)
) -> Response:
    user = db.get(User, principal.user_id)
    assert user is not None
    return _render(
        request,
        "account.html",
        {
            "user": user,
            "passkeys": passkeys.passkeys_of(db, user.id),
            "codes_left": services.recovery_codes_left(db, user.id),
            "recent": services.recent_sessions(db, user.id),
            "current_session": principal.session_id,
        },
    )


@router.post("/account/recovery-codes", include_in_schema=False)
def account_new_codes(
    request: Request,
    principal: Principal = Depends(require_sensitive(*ALL)),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    dep: Deployment = request.app.state.deployment
    user = db.get(User, principal.user_id)
    assert user is not None
    codes = services.new_recovery_codes(db, dep.keys, user)
    db.commit()
    return _render(request, "enrol_done.html", {"codes": codes, "home": "/account"})


@router.post("/account/password", include_in_schema=False)
def account_password(
    request: Request,
    current: str = Form(..., max_length=1024),
    new: str = Form(..., max_length=1024),
    new_again: str = Form(..., max_length=1024),
    principal: Principal = Depends(require_roles(*ALL)),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    user = db.get(User, principal.user_id)
    row = db.get(WebSession, principal.session_id)
    assert user is not None and row is not None
    ctx: dict[str, Any] = {
        "user": user,
        "passkeys": passkeys.passkeys_of(db, user.id),
        "codes_left": services.recovery_codes_left(db, user.id),
    }
    if new != new_again:
        return _render(request, "account.html", {**ctx, "error": "The two new passwords differ."}, status=422)
    try:
        services.change_password(db, user, row, current=current, new=new, ip=client_ip(request))
    except AccessError as exc:
        db.rollback()
        return _render(request, "account.html", {**ctx, "error": exc.message}, status=exc.status)
    db.commit()
    return _render(request, "account.html", {**ctx, "notice": "Password changed; your other sessions ended."})


# -- JSON API: session ---------------------------------------------------------------------------


class LoginIn(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    totp_code: str | None = Field(default=None, max_length=20)
    recovery_code: str | None = Field(default=None, max_length=64)


class SessionOut(BaseModel):
    user_id: str
    role: str
    facility_id: str | None
    csrf_token: str
    mfa: str | None = None


class ReauthIn(BaseModel):
    password: str = Field(max_length=1024)
    totp_code: str | None = Field(default=None, max_length=20)
    recovery_code: str | None = Field(default=None, max_length=64)


@router.post("/api/v1/session", response_model=SessionOut)
def api_login(
    request: Request,
    body: LoginIn,
    _origin: None = Depends(_same_origin_only),
    db: Session = Depends(get_session),
) -> Response:
    """Sign in with password and a TOTP or recovery code in one request; sets the session cookie."""
    dep: Deployment = request.app.state.deployment
    ip = client_ip(request)
    try:
        user = services.check_password_login(db, dep.settings, dep.keys, body.email, body.password, ip=ip)
        if not (body.totp_code or body.recovery_code):
            raise AccessError("A second factor is required (totp_code or recovery_code).", status=401)
        method = services.check_second_factor(
            db,
            dep.settings,
            dep.keys,
            user,
            totp_code=body.totp_code,
            recovery_code=body.recovery_code,
            ip=ip,
        )
        old, _ = load_session(request, db)
        token, row = services.start_full_session(
            db, dep.settings, user, ip=ip, user_agent=_ua(request), method=method, previous=old
        )
    except AccessError as exc:
        db.commit()
        return _api_error(exc)
    db.commit()
    out = SessionOut(
        user_id=user.id,
        role=user.role,
        facility_id=user.facility_id,
        mfa=method,
        csrf_token=sessions.csrf_for(dep.keys.secret("csrf"), row.id),
    )
    response = JSONResponse(out.model_dump(), headers=NO_STORE)
    set_session_cookie(request, response, token)
    return response


@router.get("/api/v1/session", response_model=SessionOut)
def api_whoami(request: Request, principal: Principal = Depends(require_roles(*ALL))) -> SessionOut:
    return SessionOut(
        user_id=principal.user_id,
        role=principal.role,
        facility_id=principal.facility_id,
        csrf_token=csrf_token(request),
    )


@router.delete("/api/v1/session", status_code=204)
def api_logout(
    request: Request, _csrf: None = Depends(require_csrf), db: Session = Depends(get_session)
) -> Response:
    row, _ = load_session(request, db)
    if row is None:
        db.commit()
        raise HTTPException(status_code=401, detail="Sign in first.")
    sessions.end(db, row, "logout")
    audit(db, actor=row.user_id, action="auth.logout", ip=client_ip(request))
    db.commit()
    response = Response(status_code=204)
    clear_session_cookie(request, response)
    return response


@router.post("/api/v1/session/reauth", status_code=204)
def api_reauth(
    request: Request,
    body: ReauthIn,
    principal: Principal = Depends(require_roles(*ALL)),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    """Confirm presence again (password + second factor) before sensitive actions (ASVS 7.5.1)."""
    dep: Deployment = request.app.state.deployment
    user = db.get(User, principal.user_id)
    row = db.get(WebSession, principal.session_id)
    assert user is not None and row is not None
    try:
        services.reauthenticate(
            db,
            dep.settings,
            dep.keys,
            user,
            row,
            password=body.password,
            totp_code=body.totp_code,
            recovery_code=body.recovery_code,
            ip=client_ip(request),
        )
    except AccessError as exc:
        db.commit()
        return _api_error(exc)
    db.commit()
    return Response(status_code=204)


# -- JSON API: passkeys --------------------------------------------------------------------------


class CeremonyIn(BaseModel):
    ceremony: str = Field(max_length=32)
    credential: dict[str, Any]


@router.post("/api/v1/webauthn/register/options")
def webauthn_register_options(
    request: Request, _csrf: None = Depends(require_csrf), db: Session = Depends(get_session)
) -> Response:
    """Start adding a passkey: during enrolment, or later from the account page (after re-authentication)."""
    dep: Deployment = request.app.state.deployment
    found = _step_session(request, db, sessions.STAGE_ENROL, sessions.STAGE_FULL)
    if found is None:
        db.commit()
        raise HTTPException(status_code=401, detail="Sign in first.")
    row, user = found
    if row.stage == sessions.STAGE_FULL:
        require_recent_auth(request)
    options = passkeys.registration_options(db, dep.settings, user, session_id=row.id)
    db.commit()
    return JSONResponse(options, headers=NO_STORE)


@router.post("/api/v1/webauthn/register/verify")
def webauthn_register_verify(
    request: Request,
    body: CeremonyIn,
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    dep: Deployment = request.app.state.deployment
    found = _step_session(request, db, sessions.STAGE_ENROL, sessions.STAGE_FULL)
    if found is None:
        db.commit()
        raise HTTPException(status_code=401, detail="Sign in first.")
    row, user = found
    try:
        passkeys.register(
            db,
            dep.settings,
            user,
            ceremony=body.ceremony,
            credential=body.credential,
            session_id=row.id,
            ip=client_ip(request),
        )
    except AccessError as exc:
        db.commit()
        return _api_error(exc)
    if row.stage == sessions.STAGE_ENROL:
        services.activate(db, user, method="passkey", ip=client_ip(request))
        token, _ = services.start_full_session(
            db,
            dep.settings,
            user,
            ip=client_ip(request),
            user_agent=_ua(request),
            method="passkey",
            previous=row,
        )
        db.commit()
        response = JSONResponse({"next": "/enrol/done"}, headers=NO_STORE)
        set_session_cookie(request, response, token)
        return response
    db.commit()
    return JSONResponse({"next": "/account"}, headers=NO_STORE)


@router.post("/api/v1/webauthn/login/options")
def webauthn_login_options(
    request: Request, _origin: None = Depends(_same_origin_only), db: Session = Depends(get_session)
) -> Response:
    """Start a passkey sign-in: as the second factor after the password, or on its own (user verification
    required, so the passkey alone is two factors)."""
    dep: Deployment = request.app.state.deployment
    found = _step_session(request, db, sessions.STAGE_PASSWORD)
    row, user = found if found else (None, None)
    options = passkeys.authentication_options(db, dep.settings, user=user, session_id=row.id if row else None)
    db.commit()
    return JSONResponse(options, headers=NO_STORE)


@router.post("/api/v1/webauthn/login/verify")
def webauthn_login_verify(
    request: Request,
    body: CeremonyIn,
    _origin: None = Depends(_same_origin_only),
    db: Session = Depends(get_session),
) -> Response:
    dep: Deployment = request.app.state.deployment
    ip = client_ip(request)
    found = _step_session(request, db, sessions.STAGE_PASSWORD)
    row = found[0] if found else None
    try:
        lock = services.throttle.check(db, [services.throttle.address_key(ip)])
        if lock is not None:
            raise AccessError(lock.message, status=429)
        user = passkeys.authenticate(
            db,
            dep.settings,
            ceremony=body.ceremony,
            credential=body.credential,
            session_id=row.id if row else None,
            ip=ip,
        )
        if user.status != "active":
            raise AccessError("Enrolment is not finished.", status=403)
        services.check_location(db, dep.settings, user, ip, action="auth.login")
        token, new_row = services.start_full_session(
            db, dep.settings, user, ip=ip, user_agent=_ua(request), method="passkey", previous=row
        )
    except AccessError as exc:
        if exc.status == 401:
            services.throttle.fail(db, dep.settings, account=None, address=services.throttle.address_key(ip))
        db.commit()
        return _api_error(exc)
    db.commit()
    response = JSONResponse(
        {
            "next": _home(user.role),
            "user_id": user.id,
            "role": user.role,
            "csrf_token": sessions.csrf_for(dep.keys.secret("csrf"), new_row.id),
        },
        headers=NO_STORE,
    )
    set_session_cookie(request, response, token)
    return response


# -- JSON API: own account -----------------------------------------------------------------------


class PasswordChangeIn(BaseModel):
    current: str = Field(max_length=1024)
    new: str = Field(max_length=1024)


@router.post("/api/v1/account/recovery-codes")
def api_new_codes(
    request: Request,
    principal: Principal = Depends(require_sensitive(*ALL)),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    """Ten new single-use recovery codes (the old ones stop working); needs a recent re-authentication."""
    dep: Deployment = request.app.state.deployment
    user = db.get(User, principal.user_id)
    assert user is not None
    codes = services.new_recovery_codes(db, dep.keys, user)
    db.commit()
    return JSONResponse({"recovery_codes": codes}, headers=NO_STORE)


@router.post("/api/v1/account/password", status_code=204)
def api_change_password(
    request: Request,
    body: PasswordChangeIn,
    principal: Principal = Depends(require_roles(*ALL)),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    user = db.get(User, principal.user_id)
    row = db.get(WebSession, principal.session_id)
    assert user is not None and row is not None
    try:
        services.change_password(db, user, row, current=body.current, new=body.new, ip=client_ip(request))
    except AccessError as exc:
        db.rollback()
        return _api_error(exc)
    db.commit()
    return Response(status_code=204)


# -- administration: accounts, facilities, vetting --------------------------------------------------


class InviteIn(BaseModel):
    email: str = Field(max_length=254)
    role: str = Field(max_length=16)
    facility: str | None = Field(default=None, max_length=64)


class RoleIn(BaseModel):
    role: str = Field(max_length=16)
    facility: str | None = Field(default=None, max_length=64)


class DisableIn(BaseModel):
    reason: str = Field(default="", max_length=200)


class VettingIn(BaseModel):
    kind: str = Field(max_length=32)
    completed_on: date
    expires_on: date
    reference: str | None = Field(default=None, max_length=120)


class FacilityIn(BaseModel):
    name: str = Field(max_length=64)
    country: str = Field(min_length=2, max_length=2)
    networks: list[str] = Field(max_length=64)


@router.get("/api/v1/users")
def api_users(
    principal: Principal = Depends(require_roles("admin")), db: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    return services.account_overview(db)


@router.post("/api/v1/users", status_code=201)
def api_invite(
    request: Request,
    body: InviteIn,
    principal: Principal = Depends(require_sensitive("admin")),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    """Invite a person; the single-use enrolment link is in the answer (hand it over out of band)."""
    dep: Deployment = request.app.state.deployment
    try:
        url = services.invite_user(
            db, dep.settings, body.email, body.role, body.facility, actor=principal.user_id
        )
    except AccessError as exc:
        db.rollback()
        return _api_error(exc)
    db.commit()
    return JSONResponse({"enrolment_url": url}, status_code=201, headers=NO_STORE)


@router.post("/api/v1/users/{user_id}/disable")
def api_disable(
    user_id: str,
    request: Request,
    body: DisableIn | None = Body(default=None),
    principal: Principal = Depends(require_sensitive("admin")),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    try:
        services.disable_user(db, user_id, actor=principal.user_id, reason=body.reason if body else "")
    except AccessError as exc:
        db.rollback()
        return _api_error(exc)
    db.commit()
    return JSONResponse({"status": "disabled"})


@router.put("/api/v1/users/{user_id}/role")
def api_set_role(
    user_id: str,
    body: RoleIn,
    principal: Principal = Depends(require_sensitive("admin")),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    try:
        user = services.set_role(db, user_id, body.role, actor=principal.user_id, facility_id=body.facility)
    except AccessError as exc:
        db.rollback()
        return _api_error(exc)
    db.commit()
    return JSONResponse({"role": user.role})


@router.post("/api/v1/users/{user_id}/vetting", status_code=201)
def api_vetting(
    user_id: str,
    body: VettingIn,
    principal: Principal = Depends(require_sensitive("admin")),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    try:
        rec = record_vetting(
            db,
            user_id,
            body.kind,
            completed_on=body.completed_on,
            expires_on=body.expires_on,
            recorded_by=principal.user_id,
            reference=body.reference,
        )
        audit(
            db,
            actor=principal.user_id,
            action="user.vetting_recorded",
            target=user_id,
            details={"kind": body.kind, "expires_on": body.expires_on.isoformat()},
        )
    except VettingError as exc:
        db.rollback()
        return JSONResponse({"detail": str(exc)}, status_code=422)
    db.commit()
    return JSONResponse({"id": rec.id}, status_code=201)


@router.get("/api/v1/facilities")
def api_facilities(
    principal: Principal = Depends(require_roles("admin")), db: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    return [
        {"id": f.id, "name": f.name, "country": f.country, "networks": f.networks.split(",")}
        for f in db.scalars(select(Facility).order_by(Facility.name)).all()
    ]


@router.post("/api/v1/facilities", status_code=201)
def api_create_facility(
    request: Request,
    body: FacilityIn,
    principal: Principal = Depends(require_sensitive("admin")),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    dep: Deployment = request.app.state.deployment
    try:
        facility = create_facility(db, body.name, body.country, body.networks, settings=dep.settings)
        audit(
            db,
            actor=principal.user_id,
            action="facility.created",
            target=facility.id,
            details={"country": facility.country},
        )
    except FacilityError as exc:
        db.rollback()
        return JSONResponse({"detail": str(exc)}, status_code=422)
    db.commit()
    return JSONResponse({"id": facility.id}, status_code=201)


# -- administration: HTML ------------------------------------------------------------------------


def _admin_page(
    request: Request,
    db: Session,
    *,
    error: str | None = None,
    notice: str | None = None,
    link: str | None = None,
    status: int = 200,
) -> Response:
    return _render(
        request,
        "admin.html",
        {
            "users": services.account_overview(db),
            "facilities": db.scalars(select(Facility).order_by(Facility.name)).all(),
            "roles": ROLES,
            "kinds": KINDS,
            "error": error,
            "notice": notice,
            "link": link,
        },
        status=status,
    )


@router.get("/admin", response_class=HTMLResponse, include_in_schema=False)
def admin_page(
    request: Request,
    principal: Principal = Depends(require_roles("admin")),
    db: Session = Depends(get_session),
) -> Response:
    return _admin_page(request, db)


@router.post("/admin/users", include_in_schema=False)
def admin_invite(
    request: Request,
    email: str = Form(..., max_length=254),
    role: str = Form(..., max_length=16),
    facility: str = Form("", max_length=64),
    principal: Principal = Depends(require_sensitive("admin")),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    dep: Deployment = request.app.state.deployment
    try:
        url = services.invite_user(db, dep.settings, email, role, facility or None, actor=principal.user_id)
    except AccessError as exc:
        db.rollback()
        return _admin_page(request, db, error=exc.message, status=exc.status)
    db.commit()
    return _admin_page(
        request,
        db,
        notice="Invitation created. Hand this single-use link over in person or "
        "through another trusted channel:",
        link=url,
    )


@router.post("/admin/users/{user_id}/disable", include_in_schema=False)
def admin_disable(
    user_id: str,
    request: Request,
    reason: str = Form("", max_length=200),
    principal: Principal = Depends(require_sensitive("admin")),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    try:
        services.disable_user(db, user_id, actor=principal.user_id, reason=reason)
    except AccessError as exc:
        db.rollback()
        return _admin_page(request, db, error=exc.message, status=exc.status)
    db.commit()
    return RedirectResponse("/admin", status_code=303)


@router.post("/admin/users/{user_id}/role", include_in_schema=False)
def admin_role(
    user_id: str,
    request: Request,
    role: str = Form(..., max_length=16),
    facility: str = Form("", max_length=64),
    principal: Principal = Depends(require_sensitive("admin")),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    try:
        services.set_role(db, user_id, role, actor=principal.user_id, facility_id=facility or None)
    except AccessError as exc:
        db.rollback()
        return _admin_page(request, db, error=exc.message, status=exc.status)
    db.commit()
    return RedirectResponse("/admin", status_code=303)


@router.post("/admin/users/{user_id}/vetting", include_in_schema=False)
def admin_vetting(
    user_id: str,
    request: Request,
    kind: str = Form(..., max_length=32),
    completed_on: date = Form(...),
    expires_on: date = Form(...),
    reference: str = Form("", max_length=120),
    principal: Principal = Depends(require_sensitive("admin")),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    try:
        record_vetting(
            db,
            user_id,
            kind,
            completed_on=completed_on,
            expires_on=expires_on,
            recorded_by=principal.user_id,
            reference=reference or None,
        )
        audit(
            db,
            actor=principal.user_id,
            action="user.vetting_recorded",
            target=user_id,
            details={"kind": kind, "expires_on": expires_on.isoformat()},
        )
    except VettingError as exc:
        db.rollback()
        return _admin_page(request, db, error=str(exc), status=422)
    db.commit()
    return RedirectResponse("/admin", status_code=303)


@router.post("/admin/facilities", include_in_schema=False)
def admin_facility(
    request: Request,
    name: str = Form(..., max_length=64),
    country: str = Form(..., max_length=2),
    networks: str = Form(..., max_length=2000),
    principal: Principal = Depends(require_sensitive("admin")),
    _csrf: None = Depends(require_csrf),
    db: Session = Depends(get_session),
) -> Response:
    dep: Deployment = request.app.state.deployment
    try:
        facility = create_facility(
            db, name, country, [n for n in networks.replace(",", " ").split() if n], settings=dep.settings
        )
        audit(
            db,
            actor=principal.user_id,
            action="facility.created",
            target=facility.id,
            details={"country": facility.country},
        )
    except FacilityError as exc:
        db.rollback()
        return _admin_page(request, db, error=str(exc), status=422)
    db.commit()
    return RedirectResponse("/admin", status_code=303)
