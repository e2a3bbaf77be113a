"""Passwords per NIST SP 800-63B 3.1.1.2 and ASVS 5.0 V6.2: length, not composition; a blocklist; Argon2id.

- at least 12 characters (ASVS 6.2.1), up to 128 accepted (6.2.9), any character, no composition rules
  (6.2.5); Unicode normalised (NFKC) before hashing so the same password typed on another keyboard matches;
- checked against the shipped list of the 20,000 most common/breached passwords (6.2.4, 6.2.12) and against
  context words such as the product name or the person's e-mail (6.2.11);
- stored with Argon2id (ASVS 11.4.2) with the OWASP minimum parameters (19 MiB, t=2, p=1), rehashed on login
  if the parameters change.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 128
CONTEXT_WORDS = ("earshot", "password", "passwort", "qwerty")

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the account does not exist, so timing does not reveal which e-mails exist.
_DUMMY_HASH = _hasher.hash("not a real password, only used to even out timing")


class PasswordRejected(ValueError):
    """The chosen password does not meet the policy; the message says why (never the password)."""


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common and breached passwords, lower-cased."""
    text = resources.files("earshot").joinpath("data", "common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def _is_trivial(pw: str) -> bool:
    """One repeated character or a straight run such as 'abcdefghijkl' or '123456789012'."""
    if len(set(pw)) <= 2:
        return True
    steps = {ord(b) - ord(a) for a, b in zip(pw, pw[1:], strict=False)}
    return steps <= {1} or steps <= {-1} or steps <= {1, -9} or steps <= {-1, 9}


def _is_two_common(pw: str) -> bool:
    """Two common passwords glued together ('qwertyqwerty', 'dragonmonkey'): the shipped list has few entries
    of 12+ characters, so long passwords built from it are caught this way too."""
    common = common_passwords()
    if len(pw) > 40:
        return False
    return any(pw[:i] in common and pw[i:] in common for i in range(3, len(pw) - 2))


def check_password(password: str, *, email: str | None = None) -> None:
    """Raise `PasswordRejected` with a clear reason if `password` may not be used."""
    pw = normalise(password)
    if len(pw) < MIN_LENGTH:
        raise PasswordRejected(f"Choose a password of at least {MIN_LENGTH} characters.")
    if len(pw) > MAX_LENGTH:
        raise PasswordRejected(f"Choose a password of at most {MAX_LENGTH} characters.")
    lowered = pw.lower()
    stripped = lowered.rstrip("0123456789!?.#*$@ ")
    if _is_trivial(lowered):
        raise PasswordRejected("This password is too predictable (repeated or sequential characters).")
    if lowered in common_passwords() or stripped in common_passwords() or _is_two_common(lowered):
        raise PasswordRejected("This password is on a list of common or breached passwords; choose another.")
    words = list(CONTEXT_WORDS)
    if email:
        local = email.split("@", 1)[0].lower()
        if len(local) >= 4:
            words.append(local)
    for word in words:
        if word in lowered and len(lowered) - len(word) < 8:
            raise PasswordRejected("This password is mostly a word tied to this service or your account.")


def hash_password(password: str) -> str:
    """Argon2id hash (salted, parameters encoded in the string)."""
    return _hasher.hash(normalise(password))


def verify_password(stored_hash: str | None, password: str) -> tuple[bool, bool]:
    """(matches, needs_rehash). A missing hash still costs one verification (no timing oracle)."""
    try:
        if stored_hash is None:
            _hasher.verify(_DUMMY_HASH, normalise(password) + "\x00")
            return False, False
        _hasher.verify(stored_hash, normalise(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, _hasher.check_needs_rehash(stored_hash)
