"""Helpers for tests that need signed-in staff: invite, enrol (password + TOTP) and sign in, like a person.

    from tests.access.helpers import enrol_and_login
    who = enrol_and_login(client, deployment, "rev@example.org", "reviewer")
    client.post(url, headers={"X-CSRF-Token": who["csrf"]}, ...)

The client keeps the session cookie. Reviewers and leads are put in a facility covering loopback, so the
client must connect from 127.0.0.1 (`TestClient(app, client=("127.0.0.1", 50000))`).
"""

from __future__ import annotations

import html
import re
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select

from earshot.access import totp as totp_module
from earshot.access.facilities import create_facility
from earshot.access.models import Facility
from earshot.access.services import invite_user
from earshot.access.vetting import KINDS, record_vetting
from earshot.database import utcnow

PASSWORD = "correct horse battery staple 42"
TEST_FACILITY = "Test facility"

# The last TOTP step used per secret, so consecutive sign-ins never replay a code.
_last_step: dict[str, int] = {}


def build_app(deployment: Any) -> Any:
    """The full app, or (while another domain's views are mid-change) the access router with the hardening."""
    try:
        from earshot.web.app import create_app

        return create_app(deployment)
    except ImportError:
        from tests.access.conftest import access_only_app

        return access_only_app(deployment)


def _now() -> float:
    return time.time() + _clock_offset


# The server accepts each code once, for the current and the previous 30 s step. Instead of sleeping until
# the next step, tests move the server's TOTP clock forward (only the TOTP check reads it).
_clock_offset = 0.0
totp_module._clock = _now


def totp_code(secret: str) -> str:
    """A valid code newer than any used before with `secret` (moving the TOTP clock on if it has to).

    The code is for the current step, never the previous one: a step that rolls over before the
    server checks it would otherwise leave the code two steps old, outside the accepted window
    (a slow CI run failed enrolment that way)."""
    global _clock_offset
    current = int(_now() // 30)
    step = max(current, _last_step.get(secret, -1) + 1)
    if step > current:
        _clock_offset += step * 30 + 0.5 - _now()
    _last_step[secret] = step
    return pyotp.TOTP(secret).at(step * 30)


def hidden(page: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert m, f"no hidden field {name}"
    return html.unescape(m.group(1))


def facility_id(
    deployment: Any, *, name: str = TEST_FACILITY, networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
) -> str:
    """The id of a facility (created on first use) whose networks cover loopback."""
    with deployment.db.session() as s:
        fac = s.scalar(select(Facility).where(Facility.name == name))
        if fac is None:
            fac = create_facility(
                s,
                name,
                deployment.settings.allowed_countries[0],
                list(networks),
                settings=deployment.settings,
            )
        return fac.id


def invite(deployment: Any, email: str, role: str, *, facility: str | None = None) -> str:
    """The enrolment URL's path for a new account (reviewers and leads get the loopback facility)."""
    if facility is None and role in ("reviewer", "lead"):
        facility = facility_id(deployment)
    with deployment.db.session() as s:
        url = invite_user(s, deployment.settings, email, role, facility)
    return urlsplit(url).path


def vet(deployment: Any, user_id: str, *, days: int = 365) -> None:
    today = utcnow().date()
    with deployment.db.session() as s:
        for kind in KINDS:
            record_vetting(
                s,
                user_id,
                kind,
                completed_on=today,
                expires_on=today + timedelta(days=days),
                recorded_by="test",
            )


def enrol(client: TestClient, enrol_path: str, *, password: str = PASSWORD) -> dict[str, Any]:
    """Use an enrolment link: password, then TOTP. Returns the secret and the recovery codes."""
    r = client.get(enrol_path)
    assert r.status_code == 200, r.text
    r = client.post(
        enrol_path, data={"password": password, "password_again": password}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    page = client.get("/enrol/mfa")
    assert page.status_code == 200, page.text
    secret = re.search(r'data-secret="([A-Z2-7]+)"', page.text).group(1)
    csrf = hidden(page.text, "csrf_token")
    r = client.post(
        "/enrol/mfa", data={"code": totp_code(secret), "csrf_token": csrf}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/enrol/done", r.text
    done = client.get("/enrol/done")
    codes = re.findall(r"<li><code>([A-Z2-7-]+)</code></li>", done.text)
    return {"totp_secret": secret, "recovery_codes": codes, "password": password}


def login(client: TestClient, email: str, password: str, secret: str) -> dict[str, Any]:
    """Sign in through the JSON API (password + TOTP); returns the session answer (user_id, role, csrf)."""
    r = client.post(
        "/api/v1/session", json={"email": email, "password": password, "totp_code": totp_code(secret)}
    )
    assert r.status_code == 200, r.text
    return r.json()


def enrol_and_login(
    client: TestClient,
    deployment: Any,
    email: str,
    role: str,
    *,
    vetted: bool = False,
    facility: str | None = None,
) -> dict[str, Any]:
    """Invite, enrol with TOTP and sign in. The client keeps the cookie.

    Returns {"user_id", "role", "csrf", "email", "password", "totp_secret", "recovery_codes"}.
    """
    enrolled = enrol(client, invite(deployment, email, role, facility=facility))
    session = login(client, email, enrolled["password"], enrolled["totp_secret"])
    if vetted:
        vet(deployment, session["user_id"])
    return {
        "user_id": session["user_id"],
        "role": session["role"],
        "csrf": session["csrf_token"],
        "email": email,
        **enrolled,
    }
