"""Accounts: invitation, enrolment, sign-in, second factors, recovery codes, disabling and roles.

Everything here runs inside the caller's database transaction and writes its audit records there, so an
account change is never committed without its record. No password, code, token or e-mail address is put in
an audit record, a log line or an exception message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from earshot.access import passwords, sessions, throttle, totp
from earshot.access.facilities import FACILITY_ROLES, address_allowed, find_facility
from earshot.access.models import Facility, Invitation, RecoveryCode, User, WebSession
from earshot.access.policy import ROLES
from earshot.audit.services import record as audit
from earshot.config import Settings
from earshot.database import utcnow
from earshot.vault.keys import KeyProvider

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,252}\.[^@\s.]{2,}$")
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_CHARS = 24  # base32: 120 bits >= 112 bits, so a keyed SHA-256 is enough (ASVS 6.5.2)


class AccessError(Exception):
    """An access operation was refused; `message` is safe to show, `status` is the HTTP status to use."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# -- helpers -------------------------------------------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise AccessError("not a valid e-mail address")
    return email


def totp_key(keys: KeyProvider) -> bytes:
    return keys.secret("totp-secrets")


def throttle_key(keys: KeyProvider) -> bytes:
    return keys.secret("login-throttle")


def requires_passkey(settings: Settings, role: str) -> bool:
    return role in settings.passkey_required_roles


def enrolment_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url.rstrip('/')}/enrol/{token}"


# -- invitation and enrolment --------------------------------------------------------------------


def invite_user(
    session: Session,
    settings: Settings,
    email: str,
    role: str,
    facility_id: str | None = None,
    *,
    actor: str = "cli",
) -> str:
    """Create (or re-invite) an account and return its single-use enrolment URL.

    Only the SHA-256 of the link's token is stored; the link expires after `enrol_link_ttl_hours`
    (ASVS 6.4.1). Reviewers and leads must belong to a facility. Re-inviting an account that has not
    finished enrolment invalidates its earlier links.
    """
    email = normalise_email(email)
    if role not in ROLES:
        raise AccessError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    facility: Facility | None = None
    if facility_id:
        facility = find_facility(session, facility_id)
        if facility is None:
            raise AccessError("no such facility")
    if role in FACILITY_ROLES and facility is None:
        raise AccessError(f"a {role} must belong to a facility (--facility)")
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, role=role, status="invited", failed_logins=0)
        session.add(user)
    elif user.status != "invited":
        raise AccessError("this person already has an account (one person, one account)", status=409)
    else:
        session.execute(delete(Invitation).where(Invitation.user_id == user.id, Invitation.used_at.is_(None)))
    user.role = role
    user.facility_id = facility.id if facility else None
    session.flush()
    token = secrets.token_urlsafe(32)
    session.add(
        Invitation(
            user_id=user.id,
            token_hash=_sha256(token),
            expires_at=utcnow() + timedelta(hours=settings.enrol_link_ttl_hours),
        )
    )
    audit(session, actor=actor, action="user.invited", target=user.id, details={"role": role})
    session.flush()
    return enrolment_url(settings, token)


def find_invitation(session: Session, token: str) -> Invitation | None:
    """The invitation for `token` if it is unused, unexpired and its account still awaits enrolment."""
    if not token or len(token) > 100:
        return None
    inv = session.scalar(select(Invitation).where(Invitation.token_hash == _sha256(token)))
    if inv is None or inv.used_at is not None or inv.expires_at <= utcnow():
        return None
    user = session.get(User, inv.user_id)
    if user is None or user.status != "invited":
        return None
    return inv


def accept_invitation(session: Session, token: str, password: str, *, ip: str | None = None) -> User:
    """Use the enrolment link once: the person sets their own password (ASVS 6.4.1, 6.2.x)."""
    inv = find_invitation(session, token)
    if inv is None:
        raise AccessError("This enrolment link is invalid, already used or expired.", status=404)
    user = session.get(User, inv.user_id)
    assert user is not None
    try:
        passwords.check_password(password, email=user.email)
    except passwords.PasswordRejected as exc:
        raise AccessError(str(exc), status=422) from exc
    user.password_hash = passwords.hash_password(password)
    inv.used_at = utcnow()
    audit(session, actor=user.id, action="user.enrolment.password_set", target=user.id, ip=ip)
    session.flush()
    return user


def totp_begin(session: Session, keys: KeyProvider, user: User) -> str:
    """The TOTP secret being enrolled (created on first call; only ever shown on the enrolment page)."""
    if user.totp_secret_enc is not None and user.totp_confirmed_at is None:
        secret = totp.open_secret(totp_key(keys), user.id, user.totp_secret_enc)
        if secret is not None:
            return secret
    if user.totp_confirmed_at is not None:
        raise AccessError("an authenticator app is already enrolled", status=409)
    secret = totp.new_secret()
    user.totp_secret_enc = totp.seal_secret(totp_key(keys), user.id, secret)
    user.totp_last_step = None
    session.flush()
    return secret


def totp_confirm(
    session: Session, keys: KeyProvider, user: User, code: str, *, ip: str | None = None
) -> bool:
    """Confirm the authenticator app with a first code; the account becomes active."""
    if user.totp_secret_enc is None or user.totp_confirmed_at is not None:
        return False
    secret = totp.open_secret(totp_key(keys), user.id, user.totp_secret_enc)
    step = totp.verify(secret, code, user.totp_last_step) if secret else None
    if step is None:
        return False
    user.totp_last_step = step
    user.totp_confirmed_at = utcnow()
    activate(session, user, method="totp", ip=ip)
    return True


def activate(session: Session, user: User, *, method: str, ip: str | None = None) -> None:
    """Enrolment is complete once a second factor is confirmed (ASVS 6.3.3: MFA before any access)."""
    if user.status == "invited":
        user.status = "active"
        audit(
            session,
            actor=user.id,
            action="user.enrolment.completed",
            target=user.id,
            ip=ip,
            details={"mfa": method},
        )
    session.flush()


def has_mfa(user: User) -> bool:
    from earshot.access.models import Passkey

    if user.totp_confirmed_at is not None:
        return True
    session = Session.object_session(user)
    return bool(session and session.scalar(select(Passkey.id).where(Passkey.user_id == user.id).limit(1)))


# -- recovery codes ------------------------------------------------------------------------------


def _recovery_hash(keys: KeyProvider, code: str) -> str:
    norm = "".join(ch for ch in code.upper() if ch.isalnum())
    return hmac.new(keys.secret("recovery-codes"), norm.encode(), hashlib.sha256).hexdigest()


def new_recovery_codes(session: Session, keys: KeyProvider, user: User) -> list[str]:
    """Ten fresh single-use recovery codes (the old ones stop working). Shown once, stored hashed."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = base64.b32encode(secrets.token_bytes(15)).decode()[:RECOVERY_CODE_CHARS]
        code = "-".join(raw[i : i + 4] for i in range(0, RECOVERY_CODE_CHARS, 4))
        session.add(RecoveryCode(user_id=user.id, code_hash=_recovery_hash(keys, code)))
        codes.append(code)
    audit(session, actor=user.id, action="user.recovery_codes.created", target=user.id)
    session.flush()
    return codes


def recovery_codes_left(session: Session, user_id: str) -> int:
    rows = session.scalars(
        select(RecoveryCode.id).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    ).all()
    return len(rows)


def use_recovery_code(session: Session, keys: KeyProvider, user: User, code: str) -> bool:
    """Spend one recovery code (single use)."""
    if not code or len(code) > 64:
        return False
    row = session.scalar(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _recovery_hash(keys, code)
        )
    )
    if row is None or row.used_at is not None:
        return False
    row.used_at = utcnow()
    session.flush()
    return True


# -- sign-in -------------------------------------------------------------------------------------


def check_password_login(
    session: Session, settings: Settings, keys: KeyProvider, email: str, password: str, *, ip: str
) -> User:
    """First step of sign-in. Raises `AccessError` (401 generic, 429 locked, 403 wrong place)."""
    try:
        email = normalise_email(email)
    except AccessError:
        email = email.strip().lower()[:254]
    acct = throttle.account_key(throttle_key(keys), email)
    addr = throttle.address_key(ip)
    lock = throttle.check(session, [acct, addr])
    if lock is not None:
        audit(
            session,
            actor="anonymous",
            action="auth.login",
            outcome="locked",
            ip=ip,
            details={"scope": lock.scope},
        )
        raise AccessError(lock.message, status=429)
    user = session.scalar(select(User).where(User.email == email))
    ok, rehash = passwords.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or user.status == "disabled":
        lock = throttle.fail(session, settings, account=acct, address=addr)
        audit(
            session,
            actor=user.id if user else "anonymous",
            action="auth.login",
            outcome="failed",
            ip=ip,
            details={"step": "password"},
        )
        if lock is not None:
            raise AccessError(lock.message, status=429)
        raise AccessError("E-mail or password is incorrect.", status=401)
    if rehash:
        user.password_hash = passwords.hash_password(password)
    if user.status == "invited":
        raise AccessError(
            "Enrolment is not finished: use your enrolment link, or ask an administrator for a new one.",
            status=403,
        )
    check_location(session, settings, user, ip, action="auth.login")
    return user


def check_location(session: Session, settings: Settings, user: User, ip: str, *, action: str) -> None:
    """Reviewers and leads only from their facility's networks, in an allowed country (issue 4)."""
    if user.role not in FACILITY_ROLES:
        return
    facility = session.get(Facility, user.facility_id) if user.facility_id else None
    allowed, reason = address_allowed(facility, ip, settings)
    if not allowed:
        audit(session, actor=user.id, action=action, outcome="denied", ip=ip, details={"reason": reason})
        raise AccessError("Sign-in from this network is not allowed for your account.", status=403)


def check_second_factor(
    session: Session,
    settings: Settings,
    keys: KeyProvider,
    user: User,
    *,
    totp_code: str | None = None,
    recovery_code: str | None = None,
    ip: str,
) -> str:
    """Verify a TOTP or recovery code; returns the method. Failures count towards the lock-out."""
    acct = throttle.account_key(throttle_key(keys), user.email)
    lock = throttle.check(session, [acct, throttle.address_key(ip)])
    if lock is not None:
        raise AccessError(lock.message, status=429)
    if requires_passkey(settings, user.role):
        raise AccessError("Your role must sign in with a passkey.", status=403)
    method = None
    if totp_code and user.totp_secret_enc is not None and user.totp_confirmed_at is not None:
        secret = totp.open_secret(totp_key(keys), user.id, user.totp_secret_enc)
        step = totp.verify(secret, totp_code, user.totp_last_step) if secret else None
        if step is not None:
            user.totp_last_step = step
            method = "totp"
    elif recovery_code and use_recovery_code(session, keys, user, recovery_code):
        method = "recovery"
    if method is None:
        lock = throttle.fail(session, settings, account=acct, address=throttle.address_key(ip))
        audit(
            session,
            actor=user.id,
            action="auth.login",
            outcome="failed",
            ip=ip,
            details={"step": "second_factor"},
        )
        if lock is not None:
            raise AccessError(lock.message, status=429)
        raise AccessError("The code is not valid.", status=401)
    throttle.succeed(session, acct)
    session.flush()
    return method


def start_full_session(
    session: Session,
    settings: Settings,
    user: User,
    *,
    ip: str,
    user_agent: str | None,
    method: str,
    previous: WebSession | None = None,
) -> tuple[str, WebSession]:
    """Finish sign-in: a new session id (ASVS 7.2.4), one session per account (issue 4).

    Any half-way session is ended. Another live session of the same account from a different device or
    network is recorded as a possible shared login and, by `concurrent_login`, either ended or the new
    sign-in refused. A new session from the same device simply replaces the old one.
    """
    if previous is not None:
        sessions.end(session, previous, "rotated")
    others = sessions.open_sessions(session, settings, user.id)
    ua = sessions.ua_hash(user_agent)
    elsewhere = [o for o in others if o.ip != ip or o.user_agent_hash != ua]
    if elsewhere:
        audit(
            session,
            actor=user.id,
            action="session.shared_login_suspected",
            outcome="flagged",
            ip=ip,
            target=user.id,
            details={
                "other_sessions": len(elsewhere),
                "other_ips": sorted({o.ip or "" for o in elsewhere}),
                "policy": settings.concurrent_login,
            },
        )
        if settings.concurrent_login == "refuse":
            raise AccessError(
                "This account is already signed in on another device. One person, one account: sign out "
                "there first, or ask an administrator.",
                status=409,
            )
    for other in others:
        sessions.end(session, other, "replaced" if other not in elsewhere else "concurrent_login")
    token, row = sessions.create(
        session,
        settings,
        user_id=user.id,
        stage=sessions.STAGE_FULL,
        ip=ip,
        user_agent=user_agent,
        mfa_method=method,
    )
    user.last_login_at = utcnow()
    audit(session, actor=user.id, action="auth.login", outcome="ok", ip=ip, details={"mfa": method})
    session.flush()
    return token, row


def reauthenticate(
    session: Session,
    settings: Settings,
    keys: KeyProvider,
    user: User,
    row: WebSession,
    *,
    password: str,
    totp_code: str | None,
    recovery_code: str | None = None,
    ip: str,
) -> None:
    """Prove presence again before a sensitive action (ASVS 7.5.1): password and a second factor."""
    acct = throttle.account_key(throttle_key(keys), user.email)
    lock = throttle.check(session, [acct, throttle.address_key(ip)])
    if lock is not None:
        raise AccessError(lock.message, status=429)
    ok, _ = passwords.verify_password(user.password_hash, password)
    if not ok:
        lock = throttle.fail(session, settings, account=acct, address=throttle.address_key(ip))
        audit(session, actor=user.id, action="auth.reauth", outcome="failed", ip=ip)
        raise AccessError(
            lock.message if lock else "Password or code is incorrect.", status=429 if lock else 401
        )
    check_second_factor(
        session, settings, keys, user, totp_code=totp_code, recovery_code=recovery_code, ip=ip
    )
    row.auth_at = utcnow()
    audit(session, actor=user.id, action="auth.reauth", outcome="ok", ip=ip)
    session.flush()


def change_password(
    session: Session, user: User, row: WebSession, *, current: str, new: str, ip: str | None = None
) -> None:
    """Change one's own password (ASVS 6.2.2, 6.2.3); other sessions end (7.4.3)."""
    ok, _ = passwords.verify_password(user.password_hash, current)
    if not ok:
        raise AccessError("The current password is incorrect.", status=401)
    try:
        passwords.check_password(new, email=user.email)
    except passwords.PasswordRejected as exc:
        raise AccessError(str(exc), status=422) from exc
    user.password_hash = passwords.hash_password(new)
    sessions.end_all(session, user.id, "password_changed", except_id=row.id)
    audit(session, actor=user.id, action="user.password_changed", target=user.id, ip=ip)
    session.flush()


# -- administration ------------------------------------------------------------------------------


def disable_user(session: Session, user_id: str, *, actor: str, reason: str = "") -> User:
    """Disable an account and end all its sessions at once (ASVS 7.4.2)."""
    user = session.get(User, user_id)
    if user is None:
        raise AccessError("no such user", status=404)
    if actor == user.id:
        raise AccessError("you cannot disable your own account", status=403)
    user.status = "disabled"
    user.disabled_reason = (reason or "disabled by an administrator")[:200]
    ended = sessions.end_all(session, user.id, "account_disabled")
    audit(session, actor=actor, action="user.disabled", target=user.id, details={"sessions_ended": ended})
    session.flush()
    return user


def set_role(
    session: Session, user_id: str, role: str, *, actor: str, facility_id: str | None = None
) -> User:
    """Change a person's role; nobody changes their own (ASVS 8.2.2). All their sessions end (7.4.2)."""
    user = session.get(User, user_id)
    if user is None:
        raise AccessError("no such user", status=404)
    if actor == user.id:
        raise AccessError("nobody can change their own role", status=403)
    if role not in ROLES:
        raise AccessError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    if facility_id:
        facility = find_facility(session, facility_id)
        if facility is None:
            raise AccessError("no such facility")
        user.facility_id = facility.id
    if role in FACILITY_ROLES and user.facility_id is None:
        raise AccessError(f"a {role} must belong to a facility")
    previous = user.role
    user.role = role
    ended = sessions.end_all(session, user.id, "role_changed")
    audit(
        session,
        actor=actor,
        action="user.role_changed",
        target=user.id,
        details={"from": previous, "to": role, "sessions_ended": ended},
    )
    session.flush()
    return user


def find_user(session: Session, ref: str) -> User | None:
    """A user by id or e-mail."""
    user = session.get(User, ref)
    if user is None and "@" in ref:
        user = session.scalar(select(User).where(User.email == ref.strip().lower()))
    return user


def account_overview(db: Session) -> list[dict[str, Any]]:
    """Every account with what blocks it (status, MFA, facility, vetting) — for the admin page and CLI."""
    from earshot.access.vetting import vetting_status

    facilities = {f.id: f for f in db.scalars(select(Facility)).all()}
    out = []
    for user in db.scalars(select(User).order_by(User.created_at, User.email)).all():
        blocked: list[str] = []
        if user.status != "active":
            blocked.append(
                f"account {user.status}"
                + (f" ({user.disabled_reason})" if user.disabled_reason and user.status == "disabled" else "")
            )
        if user.role in FACILITY_ROLES:
            if user.facility_id is None:
                blocked.append("no facility")
            status = vetting_status(db, user.id)
            blocked.extend(status.problems)
            expires = {k: (v.isoformat() if v else None) for k, v in status.expires_on.items()}
        else:
            expires = {}
        facility = facilities.get(user.facility_id or "")
        out.append(
            {
                "id": user.id,
                "email": user.email,
                "role": user.role,
                "status": user.status,
                "facility": facility.name if facility else None,
                "vetting_expires": expires,
                "blocked": blocked,
                "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
            }
        )
    return out


END_REASONS = {
    "logout": "signed out",
    "rotated": "replaced at sign-in",
    "replaced": "signed in again on this device",
    "concurrent_login": "ended: signed in elsewhere (recorded as a possible shared login)",
    "idle_timeout": "timed out (idle)",
    "absolute_timeout": "timed out (12 h limit)",
    "account_disabled": "ended: account disabled",
    "role_changed": "ended: role changed",
    "password_changed": "ended: password changed",
    "account_inactive": "ended: account inactive",
}


def recent_sessions(db: Session, user_id: str, limit: int = 10) -> list[dict[str, Any]]:
    """The person's recent sign-ins (when, from where, how, how they ended), so they can spot use of their
    account by someone else (ASVS 7.5.2)."""
    rows = db.scalars(
        select(WebSession)
        .where(WebSession.user_id == user_id, WebSession.stage == sessions.STAGE_FULL)
        .order_by(WebSession.created_at.desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": r.id,
            "started": r.created_at,
            "ip": r.ip,
            "method": r.mfa_method,
            "state": "active" if r.ended_at is None else END_REASONS.get(r.end_reason or "", r.end_reason),
        }
        for r in rows
    ]
