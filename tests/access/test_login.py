"""Sign-in from the attacker's side: wrong factors, replay, brute force, session fixation, cookie theft
(ASVS 6.3.1, 6.5.1, 6.5.5, 7.2.4, 3.3.x, 7.4.1)."""

from __future__ import annotations

import pyotp
from sqlalchemy import select

from earshot.access.models import WebSession
from earshot.audit.models import AuditRecord
from tests.access.helpers import PASSWORD, enrol, enrol_and_login, hidden, invite, login, totp_code


def _enrolled(client, deployment, email="u@example.org", role="admin"):
    who = enrol(client, invite(deployment, email, role))
    client.post("/logout", data={"csrf_token": _csrf(client)})
    return who


def _csrf(client):
    r = client.get("/api/v1/session")
    return r.json()["csrf_token"] if r.status_code == 200 else ""


def test_password_and_totp_sign_in_through_the_form(client, deployment):
    who = _enrolled(client, deployment)
    r = client.post("/login", data={"email": "u@example.org", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login/mfa")
    assert client.get("/api/v1/session").status_code == 401  # password alone is not a session
    page = client.get("/login/mfa")
    r = client.post(
        "/login/mfa",
        data={"code": totp_code(who["totp_secret"]), "csrf_token": hidden(page.text, "csrf_token")},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin"
    assert client.get("/api/v1/session").json()["role"] == "admin"


def test_wrong_password_gives_a_generic_answer(client, deployment):
    _enrolled(client, deployment)
    wrong = client.post("/api/v1/session", json={"email": "u@example.org", "password": "wrong password here"})
    unknown = client.post(
        "/api/v1/session", json={"email": "nobody@example.org", "password": "wrong password here"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "E-mail or password is incorrect."}


def test_wrong_totp_is_refused(client, deployment):
    who = _enrolled(client, deployment)
    good = pyotp.TOTP(who["totp_secret"]).now()
    bad = f"{(int(good) + 1) % 1000000:06d}"
    r = client.post(
        "/api/v1/session", json={"email": "u@example.org", "password": PASSWORD, "totp_code": bad}
    )
    assert r.status_code == 401
    r = client.post("/api/v1/session", json={"email": "u@example.org", "password": PASSWORD})
    assert r.status_code == 401  # a second factor is always required


def test_totp_code_is_single_use(client, deployment, new_client):
    who = _enrolled(client, deployment)
    code = totp_code(who["totp_secret"])
    body = {"email": "u@example.org", "password": PASSWORD, "totp_code": code}
    assert client.post("/api/v1/session", json=body).status_code == 200
    assert new_client(port=50009).post("/api/v1/session", json=body).status_code == 401


def test_recovery_codes_work_once(client, deployment):
    who = _enrolled(client, deployment)
    code = who["recovery_codes"][0]
    body = {"email": "u@example.org", "password": PASSWORD, "recovery_code": code}
    r = client.post("/api/v1/session", json=body)
    assert r.status_code == 200 and r.json()["mfa"] == "recovery"
    client.delete("/api/v1/session", headers={"X-CSRF-Token": r.json()["csrf_token"]})
    assert client.post("/api/v1/session", json=body).status_code == 401
    body["recovery_code"] = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF"
    assert client.post("/api/v1/session", json=body).status_code == 401


def test_account_locks_after_repeated_failures_with_a_clear_message(client, deployment, new_client):
    who = _enrolled(client, deployment)
    limit = deployment.settings.lockout_account_failures
    for i in range(limit):
        attacker = new_client(f"10.0.0.{i + 1}")  # spread over addresses: the account lock still applies
        r = attacker.post(
            "/api/v1/session", json={"email": "u@example.org", "password": f"guess number {i}!!"}
        )
    assert r.status_code == 429
    assert "Too many failed sign-in attempts" in r.json()["detail"]
    assert "minute" in r.json()["detail"]
    # Even the right password and code are refused while locked.
    r = client.post(
        "/api/v1/session",
        json={"email": "u@example.org", "password": PASSWORD, "totp_code": totp_code(who["totp_secret"])},
    )
    assert r.status_code == 429
    with deployment.db.session() as s:
        assert s.scalar(select(AuditRecord).where(AuditRecord.outcome == "locked")) is not None


def test_unknown_accounts_lock_the_same_way(client, deployment):
    statuses = [
        client.post("/api/v1/session", json={"email": "ghost@example.org", "password": "x" * 12}).status_code
        for _ in range(deployment.settings.lockout_account_failures)
    ]
    assert statuses[-1] == 429  # no account enumeration through the lock-out


def test_failed_second_factors_count_towards_the_lock(client, deployment):
    _enrolled(client, deployment)
    for _ in range(deployment.settings.lockout_account_failures):
        r = client.post(
            "/api/v1/session", json={"email": "u@example.org", "password": PASSWORD, "totp_code": "000000"}
        )
    assert r.status_code == 429


def test_address_is_throttled_across_accounts(make_deployment, new_client):
    from fastapi.testclient import TestClient

    from tests.access.helpers import build_app as create_app

    dep = make_deployment(lockout_address_failures=6, lockout_account_failures=100)
    c = TestClient(create_app(dep), client=("203.0.113.9", 1), base_url="http://127.0.0.1")
    codes = [
        c.post("/api/v1/session", json={"email": f"user{i}@example.org", "password": "x" * 12}).status_code
        for i in range(7)
    ]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    assert (
        "network address"
        in c.post("/api/v1/session", json={"email": "a@b.cd", "password": "y" * 12}).json()["detail"]
    )
    other = TestClient(create_app(dep), client=("203.0.113.10", 1), base_url="http://127.0.0.1")
    assert other.post("/api/v1/session", json={"email": "a@b.cd", "password": "y" * 12}).status_code == 401


def test_session_id_is_rotated_at_login(client, deployment):
    """Session fixation: a cookie planted before sign-in is worthless after it (ASVS 7.2.4)."""
    who = _enrolled(client, deployment)
    client.post("/login", data={"email": "u@example.org", "password": PASSWORD})
    pre = client.cookies.get("earshot_session")
    page = client.get("/login/mfa")
    client.post(
        "/login/mfa",
        data={"code": totp_code(who["totp_secret"]), "csrf_token": hidden(page.text, "csrf_token")},
    )
    post = client.cookies.get("earshot_session")
    assert pre and post and pre != post
    fixed = client.__class__(client.app, client=("127.0.0.1", 50000), base_url="http://127.0.0.1")
    fixed.cookies.set("earshot_session", pre)
    assert fixed.get("/api/v1/session").status_code == 401


def test_cookie_flags(client, deployment):
    who = _enrolled(client, deployment)
    r = client.post(
        "/api/v1/session",
        json={"email": "u@example.org", "password": PASSWORD, "totp_code": totp_code(who["totp_secret"])},
    )
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain-HTTP loopback (demo) only


def test_cookie_is_secure_outside_loopback(deployment):
    from fastapi.testclient import TestClient

    from tests.access.helpers import build_app as create_app

    c = TestClient(create_app(deployment), client=("127.0.0.1", 1), base_url="https://earshot.example.org")
    r = c.post("/api/v1/session", json={"email": "x@example.org", "password": "y" * 12})
    assert r.status_code == 401  # no cookie on failure at all
    who = enrol_and_login(c, deployment, "sec@example.org", "admin")
    assert who["csrf"]
    r = c.post(
        "/api/v1/session",
        json={"email": "sec@example.org", "password": PASSWORD, "totp_code": totp_code(who["totp_secret"])},
    )
    assert "secure" in r.headers["set-cookie"].lower()


def test_logout_ends_the_session_on_the_server(client, deployment):
    who = enrol_and_login(client, deployment, "out@example.org", "admin")
    stolen = client.cookies.get("earshot_session")
    r = client.delete("/api/v1/session", headers={"X-CSRF-Token": who["csrf"]})
    assert r.status_code == 204
    thief = client.__class__(client.app, client=("127.0.0.1", 50000), base_url="http://127.0.0.1")
    thief.cookies.set("earshot_session", stolen)
    assert thief.get("/api/v1/session").status_code == 401
    with deployment.db.session() as s:
        rows = s.scalars(select(WebSession).where(WebSession.end_reason == "logout")).all()
        assert rows


def test_login_page_and_unauthenticated_html_redirects(client, deployment):
    r = client.get("/admin", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    page = client.get("/login")
    assert page.status_code == 200 and 'name="password"' in page.text


def test_open_redirect_after_login_is_refused(client, deployment):
    who = _enrolled(client, deployment)
    client.post("/login", data={"email": "u@example.org", "password": PASSWORD, "next": "//evil.example/x"})
    page = client.get("/login/mfa")
    r = client.post(
        "/login/mfa",
        data={
            "code": totp_code(who["totp_secret"]),
            "csrf_token": hidden(page.text, "csrf_token"),
            "next": "https://evil.example/",
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == "/admin"


def test_login_helper_round_trip(client, deployment):
    who = enrol_and_login(client, deployment, "h@example.org", "privacy")
    assert who["role"] == "privacy"
    assert login(client, "h@example.org", PASSWORD, who["totp_secret"])["user_id"] == who["user_id"]


def test_totp_window_is_the_current_and_previous_step_each_once():
    from earshot.access import totp

    secret = pyotp.random_base32()
    t = pyotp.TOTP(secret)
    now = 1_700_000_015.0
    step = int(now // 30)
    assert totp.verify(secret, t.at(now), None, now=now) == step
    assert totp.verify(secret, t.at(now - 30), None, now=now) == step - 1
    assert totp.verify(secret, t.at(now - 60), None, now=now) is None  # older than 60 s
    assert totp.verify(secret, t.at(now + 30), None, now=now) is None  # from the future
    assert totp.verify(secret, t.at(now), step, now=now) is None  # replay
    assert totp.verify(secret, t.at(now - 30), step, now=now) is None  # an older code after a newer one
    assert totp.verify(secret, "12345", None, now=now) is None


def test_secure_cookie_uses_the_host_prefix_and_the_plain_name_is_ignored(deployment):
    from fastapi.testclient import TestClient

    from tests.access.helpers import build_app

    c = TestClient(build_app(deployment), client=("127.0.0.1", 1), base_url="https://earshot.example.org")
    enrol_and_login(c, deployment, "host@example.org", "admin")
    assert c.cookies.get("__Host-earshot_session")
    token = c.cookies.get("__Host-earshot_session")
    planted = TestClient(c.app, client=("127.0.0.1", 2), base_url="https://earshot.example.org")
    planted.cookies.set("earshot_session", token)  # a cookie without the prefix, as a sibling host could set
    assert planted.get("/api/v1/session").status_code == 401
    assert c.get("/api/v1/session").status_code == 200
