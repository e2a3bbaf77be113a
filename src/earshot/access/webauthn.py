"""Passkeys (WebAuthn Level 3 via py_webauthn): registration and sign-in ceremonies (ASVS 6.5.x, 6.6.x).

Passkeys are phishing resistant: the browser binds each assertion to the origin, which is checked here
against the configured `base_url`. A challenge is random, single use, expires after five minutes and is bound
to its purpose and to the session that asked for it. The signature counter is checked when the
authenticator keeps one (a cloned authenticator shows a counter going backwards).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import webauthn
from sqlalchemy import select
from sqlalchemy.orm import Session
from webauthn.helpers import base64url_to_bytes, options_to_json_dict
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from earshot.access.models import Passkey, User, WebAuthnChallenge
from earshot.access.services import AccessError
from earshot.audit.services import record as audit
from earshot.config import Settings
from earshot.database import utcnow

CHALLENGE_TTL = timedelta(minutes=5)


LOOPBACK_IPS = ("127.0.0.1", "::1")


def rp_id(settings: Settings) -> str:
    """The relying-party id: configured, or the host of `base_url`. An IP address cannot be an RP id, so a
    loopback `base_url` (the embedded demo) uses 'localhost': passkeys then work at http://localhost:PORT."""
    if settings.webauthn_rp_id:
        return settings.webauthn_rp_id
    host = urlsplit(settings.base_url).hostname or "localhost"
    return "localhost" if host in LOOPBACK_IPS else host


def origin(settings: Settings) -> list[str]:
    """The origins assertions may come from: `base_url`'s, and its localhost twin for a loopback demo."""
    parts = urlsplit(settings.base_url)
    origins = [f"{parts.scheme}://{parts.netloc}"]
    if parts.hostname in LOOPBACK_IPS:
        port = f":{parts.port}" if parts.port else ""
        origins.append(f"{parts.scheme}://localhost{port}")
    return origins


def _store_challenge(
    session: Session, purpose: str, challenge: bytes, *, user_id: str | None, session_id: str | None
) -> WebAuthnChallenge:
    row = WebAuthnChallenge(
        purpose=purpose,
        user_id=user_id,
        session_id=session_id,
        challenge=challenge,
        expires_at=utcnow() + CHALLENGE_TTL,
    )
    session.add(row)
    session.flush()
    return row


def _take_challenge(
    session: Session, ceremony: str, purpose: str, *, session_id: str | None
) -> WebAuthnChallenge:
    """The pending challenge for `ceremony`, consumed (single use) — or a refusal."""
    row = session.get(WebAuthnChallenge, ceremony) if ceremony and len(ceremony) <= 32 else None
    if (
        row is None
        or row.purpose != purpose
        or row.used_at is not None
        or row.expires_at <= utcnow()
        or row.session_id != session_id
    ):
        raise AccessError("This passkey request is unknown, already used or expired; try again.", status=400)
    row.used_at = utcnow()
    session.flush()
    return row


def _transports(text: str) -> list[AuthenticatorTransport]:
    out = []
    for t in text.split(","):
        try:
            out.append(AuthenticatorTransport(t))
        except ValueError:
            continue
    return out


def registration_options(
    session: Session, settings: Settings, user: User, *, session_id: str
) -> dict[str, Any]:
    """Options for navigator.credentials.create(), and the ceremony id to send back."""
    if user.webauthn_user_handle is None:
        import secrets

        user.webauthn_user_handle = secrets.token_bytes(32)  # random, never the account id or e-mail
    existing = session.scalars(select(Passkey).where(Passkey.user_id == user.id)).all()
    options = webauthn.generate_registration_options(
        rp_id=rp_id(settings),
        rp_name=settings.webauthn_rp_name,
        user_name=user.email,
        user_id=user.webauthn_user_handle,
        user_display_name=user.email,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=p.credential_id, transports=_transports(p.transports))
            for p in existing
        ],
    )
    row = _store_challenge(session, "register", options.challenge, user_id=user.id, session_id=session_id)
    return {"ceremony": row.id, "publicKey": options_to_json_dict(options)}


def register(
    session: Session,
    settings: Settings,
    user: User,
    *,
    ceremony: str,
    credential: dict[str, Any] | str,
    session_id: str,
    ip: str | None = None,
) -> Passkey:
    """Verify the authenticator's attestation and store its public key."""
    row = _take_challenge(session, ceremony, "register", session_id=session_id)
    if row.user_id != user.id:
        raise AccessError("This passkey request belongs to another account.", status=400)
    try:
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=row.challenge,
            expected_rp_id=rp_id(settings),
            expected_origin=origin(settings),
            require_user_verification=True,
        )
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
        audit(session, actor=user.id, action="passkey.registered", outcome="failed", ip=ip)
        raise AccessError("The passkey could not be verified.", status=400) from exc
    if session.scalar(select(Passkey).where(Passkey.credential_id == verified.credential_id)):
        raise AccessError("This passkey is already registered.", status=409)
    transports = ""
    if isinstance(credential, str):
        credential = json.loads(credential)
    raw = credential.get("response", {}).get("transports") if isinstance(credential, dict) else None
    if isinstance(raw, list):
        transports = ",".join(str(t) for t in raw)[:200]
    passkey = Passkey(
        user_id=user.id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=transports,
    )
    session.add(passkey)
    audit(session, actor=user.id, action="passkey.registered", target=passkey.id, ip=ip)
    session.flush()
    return passkey


def authentication_options(
    session: Session, settings: Settings, *, user: User | None, session_id: str | None
) -> dict[str, Any]:
    """Options for navigator.credentials.get(): the user's passkeys, or any discoverable one."""
    allow: list[PublicKeyCredentialDescriptor] = []
    if user is not None:
        allow = [
            PublicKeyCredentialDescriptor(id=p.credential_id, transports=_transports(p.transports))
            for p in session.scalars(select(Passkey).where(Passkey.user_id == user.id)).all()
        ]
    options = webauthn.generate_authentication_options(
        rp_id=rp_id(settings),
        allow_credentials=allow,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    row = _store_challenge(
        session, "login", options.challenge, user_id=user.id if user else None, session_id=session_id
    )
    return {"ceremony": row.id, "publicKey": options_to_json_dict(options)}


def authenticate(
    session: Session,
    settings: Settings,
    *,
    ceremony: str,
    credential: dict[str, Any] | str,
    session_id: str | None,
    ip: str | None = None,
) -> User:
    """Verify an assertion; returns the account it signs in. User verification is required, so a passkey
    alone is multi-factor (possession + PIN/biometric; ASVS 6.3.3, 800-63B AAL3 with a hardware key)."""
    row = _take_challenge(session, ceremony, "login", session_id=session_id)
    if isinstance(credential, str):
        try:
            credential = json.loads(credential)
        except ValueError as exc:
            raise AccessError("The passkey response is malformed.", status=400) from exc
    if not isinstance(credential, dict):
        raise AccessError("The passkey response is malformed.", status=400)
    try:
        cred_id = base64url_to_bytes(str(credential.get("rawId") or credential.get("id") or ""))
    except ValueError as exc:
        raise AccessError("The passkey response is malformed.", status=400) from exc
    passkey = session.scalar(select(Passkey).where(Passkey.credential_id == cred_id))
    if passkey is None or (row.user_id is not None and passkey.user_id != row.user_id):
        audit(
            session,
            actor=row.user_id or "anonymous",
            action="auth.passkey",
            outcome="failed",
            ip=ip,
            details={"reason": "unknown credential"},
        )
        raise AccessError("This passkey is not registered here.", status=401)
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=row.challenge,
            expected_rp_id=rp_id(settings),
            expected_origin=origin(settings),
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as exc:
        audit(
            session,
            actor=passkey.user_id,
            action="auth.passkey",
            outcome="failed",
            ip=ip,
            details={"reason": "verification failed"},
        )
        raise AccessError("The passkey could not be verified.", status=401) from exc
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = utcnow()
    user = session.get(User, passkey.user_id)
    if user is None or user.status == "disabled":
        raise AccessError("This account is disabled.", status=403)
    session.flush()
    return user


def passkeys_of(session: Session, user_id: str) -> list[Passkey]:
    return list(session.scalars(select(Passkey).where(Passkey.user_id == user_id)).all())
