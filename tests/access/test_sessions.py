"""Sessions from the attacker's side: timeouts, termination on disable and role change, one session per
account, re-authentication for sensitive actions, CSRF (ASVS 7.3.1, 7.3.2, 7.4.2, 7.5.1, 3.5.1)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from earshot.access import services
from earshot.access.models import User, WebSession
from earshot.audit.models import AuditRecord
from earshot.database import utcnow
from tests.access.helpers import PASSWORD, build_app, enrol_and_login, totp_code


def _age_sessions(deployment, **delta):
    with deployment.db.session() as s:
        for row in s.scalars(select(WebSession).where(WebSession.ended_at.is_(None))):
            if "idle" in delta:
                row.last_seen_at = utcnow() - delta["idle"]
            if "absolute" in delta:
                row.expires_at = utcnow() - timedelta(seconds=1)
            if "auth" in delta:
                row.auth_at = utcnow() - delta["auth"]


def test_idle_timeout_ends_the_session(client, deployment):
    enrol_and_login(client, deployment, "idle@example.org", "admin")
    _age_sessions(deployment, idle=timedelta(minutes=deployment.settings.session_idle_minutes - 1))
    assert client.get("/api/v1/session").status_code == 200  # activity just in time keeps it alive
    _age_sessions(deployment, idle=timedelta(minutes=deployment.settings.session_idle_minutes, seconds=1))
    assert client.get("/api/v1/session").status_code == 401
    with deployment.db.session() as s:
        assert s.scalar(select(WebSession.end_reason).where(WebSession.end_reason == "idle_timeout"))


def test_absolute_timeout_ends_even_an_active_session(client, deployment):
    enrol_and_login(client, deployment, "abs@example.org", "admin")
    with deployment.db.session() as s:
        row = s.scalar(select(WebSession).where(WebSession.ended_at.is_(None), WebSession.stage == "full"))
        assert abs((row.expires_at - row.created_at) - timedelta(hours=12)) < timedelta(minutes=1)
    _age_sessions(deployment, absolute=True)
    assert client.get("/api/v1/session").status_code == 401


def test_disabling_an_account_ends_its_sessions_at_once(client, deployment, new_client):
    victim = enrol_and_login(client, deployment, "gone@example.org", "reviewer")
    admin = new_client(port=50100)
    boss = enrol_and_login(admin, deployment, "boss@example.org", "admin")
    r = admin.post(
        f"/api/v1/users/{victim['user_id']}/disable",
        json={"reason": "left"},
        headers={"X-CSRF-Token": boss["csrf"]},
    )
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/session").status_code == 401
    r = client.post(
        "/api/v1/session",
        json={
            "email": "gone@example.org",
            "password": PASSWORD,
            "totp_code": totp_code(victim["totp_secret"]),
        },
    )
    assert r.status_code == 401  # disabled accounts cannot sign in (same answer as a wrong password)


def test_role_change_ends_sessions_and_nobody_changes_their_own_role(client, deployment, new_client):
    rev = enrol_and_login(client, deployment, "rev@example.org", "reviewer")
    admin = new_client(port=50101)
    boss = enrol_and_login(admin, deployment, "boss@example.org", "admin")
    r = admin.put(
        f"/api/v1/users/{rev['user_id']}/role", json={"role": "lead"}, headers={"X-CSRF-Token": boss["csrf"]}
    )
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/session").status_code == 401
    r = admin.put(
        f"/api/v1/users/{boss['user_id']}/role",
        json={"role": "privacy"},
        headers={"X-CSRF-Token": boss["csrf"]},
    )
    assert r.status_code == 403
    assert "own role" in r.json()["detail"]
    # A reviewer cannot reach the role endpoint at all.
    enrol_and_login(client, deployment, "rev2@example.org", "reviewer")
    who = client.get("/api/v1/session").json()
    r = client.put(
        f"/api/v1/users/{who['user_id']}/role",
        json={"role": "admin"},
        headers={"X-CSRF-Token": who["csrf_token"]},
    )
    assert r.status_code == 403


def test_second_session_from_another_network_ends_the_first_and_is_recorded(client, deployment, new_client):
    who = enrol_and_login(client, deployment, "share@example.org", "privacy")
    friend = new_client("192.0.2.55", user_agent="another laptop")
    r = friend.post(
        "/api/v1/session",
        json={"email": "share@example.org", "password": PASSWORD, "totp_code": totp_code(who["totp_secret"])},
    )
    assert r.status_code == 200
    assert client.get("/api/v1/session").status_code == 401  # the first is ended
    with deployment.db.session() as s:
        rec = s.scalar(select(AuditRecord).where(AuditRecord.action == "session.shared_login_suspected"))
        assert rec is not None and rec.actor == who["user_id"] and rec.ip == "192.0.2.55"
        assert "192.0.2.55" not in rec.details or "127.0.0.1" in rec.details


def test_second_session_can_be_refused_by_policy(make_deployment):
    from fastapi.testclient import TestClient

    dep = make_deployment(concurrent_login="refuse")
    app = build_app(dep)
    first = TestClient(app, client=("127.0.0.1", 1), base_url="http://127.0.0.1")
    who = enrol_and_login(first, dep, "one@example.org", "privacy")
    second = TestClient(
        app, client=("192.0.2.7", 1), base_url="http://127.0.0.1", headers={"user-agent": "b"}
    )
    r = second.post(
        "/api/v1/session",
        json={"email": "one@example.org", "password": PASSWORD, "totp_code": totp_code(who["totp_secret"])},
    )
    assert r.status_code == 409
    assert "already signed in" in r.json()["detail"]
    assert first.get("/api/v1/session").status_code == 200


def test_same_device_sign_in_again_replaces_quietly(client, deployment):
    who = enrol_and_login(client, deployment, "again@example.org", "privacy")
    r = client.post(
        "/api/v1/session",
        json={"email": "again@example.org", "password": PASSWORD, "totp_code": totp_code(who["totp_secret"])},
    )
    assert r.status_code == 200
    with deployment.db.session() as s:
        assert (
            s.scalar(select(AuditRecord).where(AuditRecord.action == "session.shared_login_suspected"))
            is None
        )
        live = s.scalars(
            select(WebSession).where(WebSession.ended_at.is_(None), WebSession.stage == "full")
        ).all()
        assert len(live) == 1


def test_sensitive_actions_need_recent_reauthentication(client, deployment):
    boss = enrol_and_login(client, deployment, "boss@example.org", "admin")
    _age_sessions(deployment, auth=timedelta(minutes=deployment.settings.reauth_minutes + 1))
    h = {"X-CSRF-Token": boss["csrf"]}
    r = client.post("/api/v1/users", json={"email": "new@example.org", "role": "privacy"}, headers=h)
    assert r.status_code == 403 and r.headers.get("x-reauth-required") == "1"
    bad = client.post(
        "/api/v1/session/reauth", json={"password": "not it at all", "totp_code": "000000"}, headers=h
    )
    assert bad.status_code == 401
    ok = client.post(
        "/api/v1/session/reauth",
        json={"password": PASSWORD, "totp_code": totp_code(boss["totp_secret"])},
        headers=h,
    )
    assert ok.status_code == 204
    r = client.post("/api/v1/users", json={"email": "new@example.org", "role": "privacy"}, headers=h)
    assert r.status_code == 201 and r.json()["enrolment_url"].startswith(
        deployment.settings.base_url + "/enrol/"
    )


def test_sensitive_html_form_sends_to_reauth(client, deployment):
    boss = enrol_and_login(client, deployment, "boss@example.org", "admin")
    _age_sessions(deployment, auth=timedelta(hours=1))
    r = client.post(
        "/admin/users",
        data={"email": "x@example.org", "role": "privacy", "csrf_token": boss["csrf"]},
        headers={"referer": "http://127.0.0.1/admin"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/reauth?next=/admin"


def test_csrf_is_required_on_state_changes(client, deployment, new_client):
    boss = enrol_and_login(client, deployment, "boss@example.org", "admin")
    body = {"email": "c@example.org", "role": "privacy"}
    assert client.post("/api/v1/users", json=body).status_code == 403
    assert client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403
    other = new_client(port=50200)
    theirs = enrol_and_login(other, deployment, "other@example.org", "admin")
    assert (
        client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": theirs["csrf"]}).status_code == 403
    )
    r = client.post("/admin/users", data={**body, "csrf_token": "forged"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = client.post(
        "/api/v1/users", json=body, headers={"X-CSRF-Token": boss["csrf"], "Sec-Fetch-Site": "cross-site"}
    )
    assert r.status_code == 403
    r = client.post(
        "/api/v1/users", json=body, headers={"X-CSRF-Token": boss["csrf"], "Origin": "https://evil.example"}
    )
    assert r.status_code == 403
    assert client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": boss["csrf"]}).status_code == 201
    # Logout is state-changing too: no token, no logout.
    assert client.delete("/api/v1/session").status_code == 403


def test_password_change_ends_other_sessions(client, deployment, new_client):
    who = enrol_and_login(client, deployment, "pw@example.org", "privacy")
    h = {"X-CSRF-Token": who["csrf"]}
    r = client.post(
        "/api/v1/account/password",
        json={"current": "wrong wrong wrong", "new": "a brand new passphrase"},
        headers=h,
    )
    assert r.status_code == 401
    r = client.post(
        "/api/v1/account/password", json={"current": PASSWORD, "new": "password123456"}, headers=h
    )
    assert r.status_code == 422
    r = client.post(
        "/api/v1/account/password", json={"current": PASSWORD, "new": "a brand new passphrase"}, headers=h
    )
    assert r.status_code == 204
    assert client.get("/api/v1/session").status_code == 200


def test_services_refuse_self_disable_and_unknown_roles(deployment, client):
    boss = enrol_and_login(client, deployment, "boss@example.org", "admin")
    with deployment.db.session() as s:
        for call in (
            lambda: services.disable_user(s, boss["user_id"], actor=boss["user_id"]),
            lambda: services.set_role(s, boss["user_id"], "reviewer", actor="someone-else"),
            lambda: services.set_role(s, boss["user_id"], "root", actor="someone-else"),
        ):
            try:
                call()
            except services.AccessError:
                pass
            else:
                raise AssertionError("should have been refused")
        s.rollback()
    with deployment.db.session() as s:
        s.execute(update(User).values(status="active"))


def test_person_sees_that_their_session_was_ended_by_a_sign_in_elsewhere(client, deployment, new_client):
    who = enrol_and_login(client, deployment, "me@example.org", "privacy")
    friend = new_client("192.0.2.80", user_agent="friend's laptop")
    body = {"email": "me@example.org", "password": PASSWORD}
    assert (
        friend.post("/api/v1/session", json={**body, "totp_code": totp_code(who["totp_secret"])}).status_code
        == 200
    )
    assert (
        client.post("/api/v1/session", json={**body, "totp_code": totp_code(who["totp_secret"])}).status_code
        == 200
    )
    page = client.get("/account").text
    assert "192.0.2.80" in page and "signed in elsewhere" in page and "this session" in page
