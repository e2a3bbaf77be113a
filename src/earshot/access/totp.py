"""TOTP (RFC 6238) second factor: secrets encrypted at rest, codes single use (ASVS 6.5.1, 6.5.5).

The secret is sealed with AES-256-GCM under a key derived from the deployment's server secret, bound to
the user id (a secret copied to another row does not decrypt). A code is accepted once: the time step it
matched is remembered and any code for that step or an earlier one is refused (replay protection).
"""

from __future__ import annotations

import hmac
import secrets
import time

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ISSUER = "Earshot"
STEP_S = 30
# The current step, and the previous one for a code typed just as it rolled over (RFC 6238 5.2 allows one
# step of delay). A code is thus usable for at most 60 s and only once (ASVS 6.5.1, 6.5.5); a client clock
# running ahead is not accommodated.
PAST_STEPS = 1

# The server's time source (ASVS 6.5.8: never a client-supplied time); a seam for tests.
_clock = time.time


def _aead(key: bytes, user_id: str) -> tuple[AESGCM, bytes]:
    return AESGCM(key), b"earshot|totp|" + user_id.encode()


def new_secret() -> str:
    """A fresh 160-bit base32 secret (RFC 4226 recommends 160 bits)."""
    return pyotp.random_base32(length=32)


def seal_secret(key: bytes, user_id: str, secret: str) -> bytes:
    aead, aad = _aead(key, user_id)
    nonce = secrets.token_bytes(12)
    return nonce + aead.encrypt(nonce, secret.encode(), aad)


def open_secret(key: bytes, user_id: str, sealed: bytes) -> str | None:
    """The secret, or None if it cannot be authenticated (tampered or moved between users)."""
    aead, aad = _aead(key, user_id)
    try:
        return aead.decrypt(sealed[:12], sealed[12:], aad).decode()
    except (InvalidTag, ValueError):
        return None


def provisioning_uri(secret: str, account_name: str) -> str:
    """The otpauth:// URI an authenticator app imports (shown only on the enrolment page)."""
    return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code (no script, no style attribute: CSP-safe)."""
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff", omitsize=False)


def verify(secret: str, code: str, last_step: int | None, *, now: float | None = None) -> int | None:
    """The matched time step if `code` is valid and newer than `last_step`, else None."""
    code = "".join(ch for ch in code if ch.isdigit())
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = int((_clock() if now is None else now) // STEP_S)
    matched = None
    for step in range(current - PAST_STEPS, current + 1):
        if hmac.compare_digest(totp.at(step * STEP_S), code):
            matched = step
    if matched is None or (last_step is not None and matched <= last_step):
        return None
    return matched
