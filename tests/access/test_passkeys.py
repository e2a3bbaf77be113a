"""Passkeys from the attacker's side, with a software authenticator: phishing (wrong origin or RP),
replayed challenges, cloned authenticators, no user verification; roles that must use passkeys
(ASVS 6.5.x, 6.6.x; 800-63B AAL3 verifier-impersonation resistance)."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from earshot.access.models import Passkey, WebSession
from earshot.database import utcnow
from tests.access.helpers import PASSWORD, build_app, enrol, facility_id, invite, totp_code
from tests.access.softauthn import SoftAuthenticator

ORIGIN = "http://localhost:8000"


@pytest.fixture
def dep(make_deployment):
    return make_deployment(base_url=ORIGIN, passkey_required_roles=["lead"])


@pytest.fixture
def browser(dep):
    with TestClient(build_app(dep), client=("127.0.0.1", 1), base_url="http://localhost:8000") as c:
        yield c


def enrol_with_passkey(client: TestClient, dep, email: str, role: str) -> SoftAuthenticator:
    path = invite(dep, email, role)
    r = client.post(path, data={"password": PASSWORD, "password_again": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/enrol/mfa")
    csrf = hidden_csrf(page.text)
    key = SoftAuthenticator(origin=ORIGIN, rp_id="localhost")
    opts = client.post("/api/v1/webauthn/register/options", headers={"X-CSRF-Token": csrf})
    assert opts.status_code == 200, opts.text
    assert opts.json()["publicKey"]["rp"]["id"] == "localhost"
    assert opts.json()["publicKey"]["authenticatorSelection"]["userVerification"] == "required"
    r = client.post(
        "/api/v1/webauthn/register/verify",
        headers={"X-CSRF-Token": csrf},
        json={"ceremony": opts.json()["ceremony"], "credential": key.create(opts.json())},
    )
    assert r.status_code == 200, r.text
    assert r.json()["next"] == "/enrol/done"
    return key


def hidden_csrf(page: str) -> str:
    import re

    return re.search(r'data-csrf="([^"]+)"', page).group(1)


def passkey_login(client: TestClient, key: SoftAuthenticator, **kw):
    opts = client.post("/api/v1/webauthn/login/options").json()
    return client.post(
        "/api/v1/webauthn/login/verify",
        json={"ceremony": opts["ceremony"], "credential": key.get(opts, **kw)},
    )


def sign_out(client: TestClient) -> None:
    csrf = client.get("/api/v1/session").json()["csrf_token"]
    assert client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204


def test_enrol_and_sign_in_with_a_passkey_alone(browser, dep):
    key = enrol_with_passkey(browser, dep, "pk@example.org", "privacy")
    assert browser.get("/api/v1/session").json()["role"] == "privacy"
    codes = browser.get("/enrol/done")
    assert codes.text.count("<li><code>") == 10
    sign_out(browser)
    r = passkey_login(browser, key)
    assert r.status_code == 200, r.text
    assert browser.get("/api/v1/session").status_code == 200
    with dep.db.session() as s:
        pk = s.scalar(select(Passkey))
        assert pk.sign_count == 1 and pk.last_used_at is not None
        row = s.scalar(select(WebSession).where(WebSession.ended_at.is_(None), WebSession.stage == "full"))
        assert row.mfa_method == "passkey"


def test_phishing_site_assertion_is_refused(browser, dep):
    key = enrol_with_passkey(browser, dep, "ph@example.org", "privacy")
    sign_out(browser)
    # A look-alike site relays our challenge; the browser reports the origin it was really on.
    assert passkey_login(browser, key, origin="http://earshot-login.example").status_code == 401
    # ... or the authenticator signs for the phisher's RP id.
    assert passkey_login(browser, key, rp_id="earshot-login.example").status_code == 401
    assert browser.get("/api/v1/session").status_code == 401


def test_challenge_cannot_be_replayed(browser, dep):
    key = enrol_with_passkey(browser, dep, "rp@example.org", "privacy")
    sign_out(browser)
    opts = browser.post("/api/v1/webauthn/login/options").json()
    assertion = key.get(opts)
    body = {"ceremony": opts["ceremony"], "credential": assertion}
    assert browser.post("/api/v1/webauthn/login/verify", json=body).status_code == 200
    sign_out(browser)
    r = browser.post("/api/v1/webauthn/login/verify", json=body)
    assert r.status_code == 400 and "already used" in r.json()["detail"]


def test_expired_challenge_is_refused(browser, dep):
    from sqlalchemy import update

    from earshot.access.models import WebAuthnChallenge

    key = enrol_with_passkey(browser, dep, "ex@example.org", "privacy")
    sign_out(browser)
    opts = browser.post("/api/v1/webauthn/login/options").json()
    with dep.db.session() as s:
        s.execute(update(WebAuthnChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
    r = browser.post(
        "/api/v1/webauthn/login/verify", json={"ceremony": opts["ceremony"], "credential": key.get(opts)}
    )
    assert r.status_code == 400


def test_cloned_authenticator_is_detected_by_its_counter(browser, dep):
    key = enrol_with_passkey(browser, dep, "cl@example.org", "privacy")
    clone = copy.copy(key)  # same private key, counter copied now
    sign_out(browser)
    assert passkey_login(browser, key).status_code == 200
    sign_out(browser)
    assert passkey_login(browser, key).status_code == 200
    sign_out(browser)
    assert passkey_login(browser, clone).status_code == 401  # counter went backwards


def test_user_verification_is_required(browser, dep):
    key = enrol_with_passkey(browser, dep, "uv@example.org", "privacy")
    sign_out(browser)
    key.user_verified = False  # someone who only holds the key, without PIN or biometric
    assert passkey_login(browser, key).status_code == 401


def test_unknown_passkey_is_refused(browser, dep):
    enrol_with_passkey(browser, dep, "un@example.org", "privacy")
    sign_out(browser)
    stranger = SoftAuthenticator(origin=ORIGIN, rp_id="localhost")
    assert passkey_login(browser, stranger).status_code == 401


def test_passkey_as_second_factor_after_password(browser, dep):
    key = enrol_with_passkey(browser, dep, "2f@example.org", "privacy")
    sign_out(browser)
    r = browser.post("/login", data={"email": "2f@example.org", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    page = browser.get("/login/mfa")
    assert 'data-webauthn="login"' in page.text
    opts = browser.post("/api/v1/webauthn/login/options").json()
    assert len(opts["publicKey"]["allowCredentials"]) == 1  # bound to the account that gave the password
    r = browser.post(
        "/api/v1/webauthn/login/verify", json={"ceremony": opts["ceremony"], "credential": key.get(opts)}
    )
    assert r.status_code == 200
    assert browser.get("/api/v1/session").status_code == 200


def test_someone_elses_passkey_cannot_finish_my_password_sign_in(browser, dep):
    mine = enrol_with_passkey(browser, dep, "me@example.org", "privacy")
    sign_out(browser)
    other = TestClient(browser.app, client=("127.0.0.1", 2), base_url="http://localhost:8000")
    theirs = enrol_with_passkey(other, dep, "them@example.org", "privacy")
    assert mine and theirs
    browser.post("/login", data={"email": "me@example.org", "password": PASSWORD})
    opts = browser.post("/api/v1/webauthn/login/options").json()
    r = browser.post(
        "/api/v1/webauthn/login/verify", json={"ceremony": opts["ceremony"], "credential": theirs.get(opts)}
    )
    assert r.status_code == 401


def test_role_that_requires_passkeys_cannot_use_totp(browser, dep):
    """`passkey_required_roles = ["lead"]`: no TOTP enrolment, no TOTP or recovery-code sign-in."""
    path = invite(dep, "lead@example.org", "lead")
    browser.post(path, data={"password": PASSWORD, "password_again": PASSWORD})
    page = browser.get("/enrol/mfa")
    assert "data-secret" not in page.text and "must use a passkey" in page.text
    r = browser.post("/enrol/mfa", data={"code": "123456", "csrf_token": hidden_csrf(page.text)})
    assert r.status_code == 400
    assert browser.get("/api/v1/session").status_code == 401
    # With a passkey it works; a TOTP-style sign-in is then refused for this role.
    opts = browser.post(
        "/api/v1/webauthn/register/options", headers={"X-CSRF-Token": hidden_csrf(page.text)}
    ).json()
    key = SoftAuthenticator(origin=ORIGIN, rp_id="localhost")
    r = browser.post(
        "/api/v1/webauthn/register/verify",
        headers={"X-CSRF-Token": hidden_csrf(page.text)},
        json={"ceremony": opts["ceremony"], "credential": key.create(opts)},
    )
    assert r.status_code == 200
    codes = browser.get("/enrol/done").text
    import re

    code = re.findall(r"<li><code>([A-Z2-7-]+)</code></li>", codes)[0]
    sign_out(browser)
    r = browser.post(
        "/api/v1/session", json={"email": "lead@example.org", "password": PASSWORD, "recovery_code": code}
    )
    assert r.status_code == 403 and "passkey" in r.json()["detail"]
    assert passkey_login(browser, key).status_code == 200
    assert facility_id(dep)


def test_adding_a_passkey_later_needs_recent_reauthentication(browser, dep):
    who = enrol(browser, invite(dep, "late@example.org", "privacy"))
    csrf = browser.get("/api/v1/session").json()["csrf_token"]
    with dep.db.session() as s:
        for row in s.scalars(select(WebSession).where(WebSession.ended_at.is_(None))):
            row.auth_at = utcnow() - timedelta(hours=1)
    r = browser.post("/api/v1/webauthn/register/options", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403
    browser.post(
        "/api/v1/session/reauth",
        headers={"X-CSRF-Token": csrf},
        json={"password": PASSWORD, "totp_code": totp_code(who["totp_secret"])},
    )
    r = browser.post("/api/v1/webauthn/register/options", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    key = SoftAuthenticator(origin=ORIGIN, rp_id="localhost")
    r = browser.post(
        "/api/v1/webauthn/register/verify",
        headers={"X-CSRF-Token": csrf},
        json={"ceremony": r.json()["ceremony"], "credential": key.create(r.json())},
    )
    assert r.status_code == 200 and r.json()["next"] == "/account"


def test_registration_needs_csrf_and_a_session(browser, dep):
    assert browser.post("/api/v1/webauthn/register/options").status_code == 403
    enrol(browser, invite(dep, "c@example.org", "privacy"))
    assert browser.post("/api/v1/webauthn/register/options", headers={"X-CSRF-Token": "x"}).status_code == 403


def test_loopback_demo_uses_localhost_as_relying_party():
    from earshot.access.webauthn import origin, rp_id
    from earshot.config import Settings

    demo = Settings(base_url="http://127.0.0.1:8000")
    assert rp_id(demo) == "localhost"
    assert origin(demo) == ["http://127.0.0.1:8000", "http://localhost:8000"]
    prod = Settings(base_url="https://earshot.example.org")
    assert rp_id(prod) == "earshot.example.org" and origin(prod) == ["https://earshot.example.org"]
