"""Enrolment from the attacker's side: links are single use and expire, passwords are the person's own,
nothing is reachable before MFA, and no secret is stored in the clear (ASVS 6.2, 6.4.1, 6.3.3, 11.4.2)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from earshot.access.models import Invitation, User
from earshot.access.services import AccessError, invite_user
from earshot.database import utcnow
from tests.access.helpers import PASSWORD, enrol, facility_id, hidden, invite, totp_code


def test_enrolment_link_is_single_use(client, deployment):
    path = invite(deployment, "a@example.org", "admin")
    assert re.fullmatch(r"/enrol/[A-Za-z0-9_-]{40,}", path)
    enrol(client, path)
    again = client.get(path)
    assert again.status_code == 404
    assert "cannot be used" in again.text
    r = client.post(
        path, data={"password": "another long passphrase 9", "password_again": "another long passphrase 9"}
    )
    assert r.status_code == 404


def test_expired_enrolment_link_is_refused(client, deployment):
    path = invite(deployment, "late@example.org", "admin")
    with deployment.db.session() as s:
        s.execute(update(Invitation).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get(path).status_code == 404
    r = client.post(path, data={"password": PASSWORD, "password_again": PASSWORD})
    assert r.status_code == 404


def test_guessed_or_tampered_link_is_refused(client, deployment):
    path = invite(deployment, "g@example.org", "admin")
    assert client.get(path[:-1] + ("A" if path[-1] != "A" else "B")).status_code == 404
    assert client.get("/enrol/" + "x" * 43).status_code == 404


def test_reinvite_invalidates_the_earlier_link(client, deployment):
    first = invite(deployment, "r@example.org", "admin")
    second = invite(deployment, "r@example.org", "admin")
    assert client.get(first).status_code == 404
    assert client.get(second).status_code == 200


def test_link_expires_after_configured_ttl(deployment):
    with deployment.db.session() as s:
        invite_user(s, deployment.settings, "ttl@example.org", "admin")
        inv = s.scalar(select(Invitation))
        ttl = inv.expires_at - inv.created_at
    assert abs(ttl - timedelta(hours=deployment.settings.enrol_link_ttl_hours)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short pass", "at least 12"),
        ("password1234", "common or breached"),
        ("iloveyou1234", "common or breached"),
        ("qwertyqwerty", "common or breached"),
        ("dragonmonkey", "common or breached"),
        ("aaaaaaaaaaaaaaaa", "predictable"),
        ("123456789012", "predictable"),
    ],
)
def test_weak_passwords_are_refused_with_a_clear_reason(client, deployment, password, reason):
    path = invite(deployment, "weak@example.org", "admin")
    r = client.post(path, data={"password": password, "password_again": password})
    assert r.status_code == 422
    assert reason in r.text
    assert password not in r.text  # the refused password is never echoed back
    assert client.get(path).status_code == 200  # the link is still usable


def test_any_characters_and_no_composition_rules(client, deployment):
    path = invite(deployment, "uni@example.org", "admin")
    pw = "ünïcødé phrase with späces ☃"
    r = client.post(path, data={"password": pw, "password_again": pw}, follow_redirects=False)
    assert r.status_code == 303


def test_nothing_is_reachable_before_mfa_is_enrolled(client, deployment):
    path = invite(deployment, "half@example.org", "admin")
    client.post(path, data={"password": PASSWORD, "password_again": PASSWORD}, follow_redirects=False)
    assert client.get("/api/v1/session").status_code == 401
    assert client.get("/api/v1/users").status_code == 401
    assert client.get("/admin", follow_redirects=False).status_code == 303
    # Password alone does not sign in while enrolment is unfinished.
    other = client.__class__(client.app, client=("127.0.0.1", 50001), base_url="http://127.0.0.1")
    r = other.post(
        "/api/v1/session", json={"email": "half@example.org", "password": PASSWORD, "totp_code": "000000"}
    )
    assert r.status_code == 403
    assert "Enrolment is not finished" in r.json()["detail"]


def test_wrong_totp_at_enrolment_is_refused(client, deployment):
    path = invite(deployment, "t@example.org", "admin")
    client.post(path, data={"password": PASSWORD, "password_again": PASSWORD})
    page = client.get("/enrol/mfa")
    r = client.post("/enrol/mfa", data={"code": "123456", "csrf_token": hidden(page.text, "csrf_token")})
    assert r.status_code == 400
    assert client.get("/api/v1/session").status_code == 401


def test_totp_page_shows_secret_uri_and_inline_svg_qr(client, deployment):
    path = invite(deployment, "qr@example.org", "admin")
    client.post(path, data={"password": PASSWORD, "password_again": PASSWORD})
    page = client.get("/enrol/mfa")
    assert "otpauth://totp/" in page.text
    assert "<svg" in page.text
    assert "<script>" not in page.text and "style=" not in page.text
    assert page.headers["cache-control"] == "no-store"


def test_no_password_or_secret_in_the_database_in_the_clear(client, deployment):
    who = enrol(client, invite(deployment, "clear@example.org", "admin"))
    with deployment.db.session() as s:
        user = s.scalar(select(User).where(User.email == "clear@example.org"))
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert who["totp_secret"].encode() not in user.totp_secret_enc
        tokens = [i.token_hash for i in s.scalars(select(Invitation))]
        assert all(len(t) == 64 for t in tokens)
    files = [p for p in deployment.settings.data_dir.rglob("*") if p.is_file()]
    raw = b"".join(p.read_bytes() for p in files)  # SQLite database, WAL, keys, blobs
    for secret in (PASSWORD, who["totp_secret"], *who["recovery_codes"]):
        assert secret.encode() not in raw


def test_reviewer_needs_a_facility_and_one_person_one_account(client, deployment):
    with deployment.db.session() as s, pytest.raises(AccessError, match="facility"):
        invite_user(s, deployment.settings, "nofac@example.org", "reviewer")
    enrol(client, invite(deployment, "once@example.org", "admin"))
    with deployment.db.session() as s, pytest.raises(AccessError, match="one person, one account"):
        invite_user(s, deployment.settings, "ONCE@example.org", "admin")
    with deployment.db.session() as s, pytest.raises(AccessError, match="unknown role"):
        invite_user(s, deployment.settings, "x@example.org", "superuser", facility_id(deployment))


def test_recovery_codes_shown_once_ten_of_them(client, deployment):
    who = enrol(client, invite(deployment, "codes@example.org", "admin"))
    assert len(who["recovery_codes"]) == 10
    assert len(set(who["recovery_codes"])) == 10
    again = client.get("/enrol/done")
    assert not re.findall(r"<li><code>", again.text)


def test_enrolment_code_cannot_be_replayed_at_login(client, deployment, new_client):
    path = invite(deployment, "replay@example.org", "admin")
    client.post(path, data={"password": PASSWORD, "password_again": PASSWORD})
    page = client.get("/enrol/mfa")
    secret = re.search(r'data-secret="([A-Z2-7]+)"', page.text).group(1)
    code = totp_code(secret)
    client.post("/enrol/mfa", data={"code": code, "csrf_token": hidden(page.text, "csrf_token")})
    other = new_client(port=50002)
    r = other.post(
        "/api/v1/session", json={"email": "replay@example.org", "password": PASSWORD, "totp_code": code}
    )
    assert r.status_code == 401
