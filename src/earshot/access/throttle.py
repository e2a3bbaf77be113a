"""Throttling and lock-out of sign-in attempts per account and per client address (ASVS 6.3.1, 800-63B 5.2.2).

Accounts are keyed by a keyed hash of the e-mail, so unknown e-mails are throttled exactly like real ones
(no account enumeration through the lock-out message) and the table holds no e-mail addresses. A failed
second factor counts against the account like a failed password.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from earshot.access.models import LoginThrottle
from earshot.config import Settings
from earshot.database import utcnow

ADDRESS_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Locked:
    """Sign-in is refused until `until`; `scope` is 'account' or 'address'."""

    scope: str
    until: datetime

    @property
    def minutes(self) -> int:
        return max(1, math.ceil((self.until - utcnow()).total_seconds() / 60))

    @property
    def message(self) -> str:
        what = "this account" if self.scope == "account" else "this network address"
        return (
            f"Too many failed sign-in attempts for {what}. Sign-in is blocked for {self.minutes} more "
            "minute(s); ask an administrator if you need access sooner."
        )


def account_key(secret: bytes, email: str) -> str:
    return "acct:" + hmac.new(secret, email.strip().lower().encode(), hashlib.sha256).hexdigest()[:64]


def address_key(ip: str) -> str:
    return "addr:" + ip[:64]


def _row(db: Session, key: str) -> LoginThrottle | None:
    return db.get(LoginThrottle, key)


def check(db: Session, keys: list[str]) -> Locked | None:
    """The first active lock among `keys`, if any."""
    now = utcnow()
    for key in keys:
        row = _row(db, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            return Locked("account" if key.startswith("acct:") else "address", row.locked_until)
    return None


def fail(db: Session, settings: Settings, *, account: str | None, address: str) -> Locked | None:
    """Count one failure against the account and the address; returns the lock if one is now set."""
    now = utcnow()
    lock: Locked | None = None
    pairs = [(address, settings.lockout_address_failures, ADDRESS_WINDOW)]
    if account is not None:
        pairs.insert(0, (account, settings.lockout_account_failures, None))
    for key, limit, window in pairs:
        row = _row(db, key)
        if row is None:
            row = LoginThrottle(key=key, failures=0, window_start=now)
            db.add(row)
        if window is not None and now - row.window_start > window:
            row.failures, row.window_start = 0, now
        if row.locked_until is not None and row.locked_until <= now:
            row.failures, row.locked_until, row.window_start = 0, None, now
        row.failures += 1
        if row.failures >= limit:
            row.locked_until = now + timedelta(minutes=settings.lockout_minutes)
            lock = lock or Locked("account" if key.startswith("acct:") else "address", row.locked_until)
    db.flush()
    return lock


def succeed(db: Session, account: str) -> None:
    """A successful sign-in clears the account's consecutive-failure count (not the address's)."""
    row = _row(db, account)
    if row is not None:
        row.failures, row.locked_until = 0, None
        db.flush()


def unlock(db: Session, key: str) -> None:
    row = _row(db, key)
    if row is not None:
        db.delete(row)
        db.flush()
