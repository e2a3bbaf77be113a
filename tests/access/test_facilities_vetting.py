"""Facilities and vetting from the attacker's side: the wrong place, the wrong country, a spoofed
X-Forwarded-For, an unvetted or lapsed reviewer (issue 4; ASVS 8.2.x contextual authorisation)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from earshot.access.facilities import FacilityError, address_allowed, create_facility
from earshot.access.models import Facility, User, VettingRecord
from earshot.access.vetting import KINDS, VettingError, record_vetting, vetting_ok
from earshot.audit.models import AuditRecord
from earshot.cli.users import users_app
from earshot.database import utcnow
from tests.access.helpers import PASSWORD, build_app, enrol_and_login, facility_id, totp_code, vet


def test_facility_outside_allowed_countries_cannot_be_created(deployment):
    with deployment.db.session() as s:
        with pytest.raises(FacilityError, match="not an allowed country"):
            create_facility(s, "Offshore", "XX", ["10.1.0.0/16"], settings=deployment.settings)
        with pytest.raises(FacilityError, match="whole internet"):
            create_facility(s, "Anywhere", "IE", ["0.0.0.0/0"], settings=deployment.settings)
        with pytest.raises(FacilityError, match="CIDR"):
            create_facility(s, "Typo", "IE", ["10.1.0.300/16"], settings=deployment.settings)
        fac = create_facility(s, "Dublin", "ie", ["10.1.0.0/16"], settings=deployment.settings)
        assert fac.country == "IE"


def test_reviewer_cannot_sign_in_from_outside_the_facility(client, deployment, new_client):
    who = enrol_and_login(client, deployment, "rev@example.org", "reviewer")
    home = new_client("198.51.100.23", user_agent="personal laptop")
    r = home.post(
        "/api/v1/session",
        json={"email": "rev@example.org", "password": PASSWORD, "totp_code": totp_code(who["totp_secret"])},
    )
    assert r.status_code == 403
    assert "network" in r.json()["detail"]
    # The form says the same, after the password step.
    r = home.post("/login", data={"email": "rev@example.org", "password": PASSWORD})
    assert r.status_code == 403


def test_stolen_session_cookie_is_useless_outside_the_facility(client, deployment, new_client):
    enrol_and_login(client, deployment, "rev@example.org", "reviewer", vetted=True)
    assert client.get("/api/v1/session").status_code == 200
    home = new_client("198.51.100.23")
    home.cookies.set("earshot_session", client.cookies.get("earshot_session"))
    r = home.get("/api/v1/session")
    assert r.status_code == 403
    with deployment.db.session() as s:
        rec = s.scalar(
            select(AuditRecord).where(AuditRecord.action == "authz.denied", AuditRecord.ip == "198.51.100.23")
        )
        assert rec is not None and "outside the facility" in rec.details


def test_facility_in_a_country_no_longer_allowed_is_refused(make_deployment):
    dep = make_deployment()
    c = TestClient(build_app(dep), client=("127.0.0.1", 1), base_url="http://127.0.0.1")
    enrol_and_login(c, dep, "rev@example.org", "reviewer")
    with dep.db.session() as s:
        s.execute(update(Facility).values(country="XX"))
    assert c.get("/api/v1/session").status_code == 403


def test_admins_and_privacy_are_not_bound_to_a_facility(client, deployment, new_client):
    who = enrol_and_login(client, deployment, "adm@example.org", "admin")
    remote = new_client("198.51.100.7", user_agent="x")
    r = remote.post(
        "/api/v1/session",
        json={"email": "adm@example.org", "password": PASSWORD, "totp_code": totp_code(who["totp_secret"])},
    )
    assert r.status_code == 200


def test_forwarded_for_is_trusted_only_from_a_configured_proxy(make_deployment):
    dep = make_deployment(trusted_proxies=["10.0.0.1"])
    app = build_app(dep)
    inside = TestClient(app, client=("127.0.0.1", 1), base_url="http://127.0.0.1")
    who = enrol_and_login(inside, dep, "rev@example.org", "reviewer")
    cookie = inside.cookies.get("earshot_session")
    # An attacker outside claims a facility address in the header: ignored, the socket address counts.
    spoof = TestClient(
        app, client=("198.51.100.9", 1), base_url="http://127.0.0.1", headers={"x-forwarded-for": "127.0.0.1"}
    )
    spoof.cookies.set("earshot_session", cookie)
    assert spoof.get("/api/v1/session").status_code == 403
    # Behind the trusted proxy, the address the proxy saw counts (the last hop it appended).
    proxied = TestClient(
        app, client=("10.0.0.1", 1), base_url="http://127.0.0.1", headers={"x-forwarded-for": "127.0.0.1"}
    )
    proxied.cookies.set("earshot_session", cookie)
    assert proxied.get("/api/v1/session").status_code == 200
    proxied_out = TestClient(
        app,
        client=("10.0.0.1", 1),
        base_url="http://127.0.0.1",
        headers={"x-forwarded-for": "127.0.0.1, 198.51.100.9"},
    )
    proxied_out.cookies.set("earshot_session", cookie)
    assert proxied_out.get("/api/v1/session").status_code == 403
    assert who


def test_address_checks():
    from earshot.config import Settings

    fac = Facility(name="f", country="IE", networks="10.1.0.0/16,2001:db8::/32")
    settings = Settings(allowed_countries=["IE"])
    assert address_allowed(fac, "10.1.2.3", settings)[0]
    assert address_allowed(fac, "::ffff:10.1.2.3", settings)[0]
    assert address_allowed(fac, "2001:db8::1", settings)[0]
    assert not address_allowed(fac, "10.2.0.1", settings)[0]
    assert not address_allowed(fac, "testclient", settings)[0]
    assert not address_allowed(None, "10.1.2.3", settings)[0]


def test_no_task_until_all_vetting_is_recorded_and_current(client, deployment):
    who = enrol_and_login(client, deployment, "rev@example.org", "reviewer")
    uid = who["user_id"]
    with deployment.db.session() as s:
        ok, why = vetting_ok(s, uid)
        assert not ok and "background check not recorded" in why
    today = utcnow().date()
    with deployment.db.session() as s:
        for kind in KINDS[:2]:
            record_vetting(
                s, uid, kind, completed_on=today, expires_on=today + timedelta(days=30), recorded_by="t"
            )
    with deployment.db.session() as s:
        ok, why = vetting_ok(s, uid)
        assert not ok and why == "confidentiality agreement not recorded"
    vet(deployment, uid)
    with deployment.db.session() as s:
        assert vetting_ok(s, uid) == (True, "ok")
    # Expiry stops assignment by itself.
    with deployment.db.session() as s:
        s.execute(update(VettingRecord).where(VettingRecord.kind == "training").values(expires_on=today))
    with deployment.db.session() as s:
        ok, why = vetting_ok(s, uid)
        assert not ok and "training expired" in why
    with deployment.db.session() as s:
        s.execute(update(User).values(status="disabled"))
    with deployment.db.session() as s:
        assert vetting_ok(s, uid) == (False, "account is disabled")


def test_vetting_records_are_validated(client, deployment):
    who = enrol_and_login(client, deployment, "rev@example.org", "reviewer")
    today = utcnow().date()
    with deployment.db.session() as s:
        with pytest.raises(VettingError, match="unknown"):
            record_vetting(s, who["user_id"], "vibes", completed_on=today, expires_on=today, recorded_by="t")
        with pytest.raises(VettingError, match="after"):
            record_vetting(
                s, who["user_id"], "training", completed_on=today, expires_on=today, recorded_by="t"
            )
        with pytest.raises(VettingError, match="future"):
            record_vetting(
                s,
                who["user_id"],
                "training",
                completed_on=today + timedelta(days=2),
                expires_on=today + timedelta(days=9),
                recorded_by="t",
            )


def test_users_cli_shows_who_is_blocked_and_why(deployment):
    runner = CliRunner()
    d = ["--data-dir", str(deployment.settings.data_dir)]
    env = {"EARSHOT_DATABASE_URL": deployment.settings.database_url or ""}
    if not env["EARSHOT_DATABASE_URL"]:
        env = {}
    r = runner.invoke(
        users_app, ["facilities", "add", "Cork", "--country", "XX", "--network", "10.9.0.0/16", *d], env=env
    )
    assert r.exit_code != 0 and "not an allowed country" in r.output
    r = runner.invoke(
        users_app, ["facilities", "add", "Cork", "--country", "IE", "--network", "10.9.0.0/16", *d], env=env
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        users_app, ["invite", "rev@example.org", "--role", "reviewer", "--facility", "Cork", *d], env=env
    )
    assert r.exit_code == 0, r.output
    assert r.output.strip().startswith(deployment.settings.base_url + "/enrol/")
    r = runner.invoke(users_app, ["invite", "adm@example.org", "--role", "admin", *d], env=env)
    assert r.exit_code == 0
    r = runner.invoke(users_app, ["list", *d], env=env)
    assert r.exit_code == 0
    line = next(x for x in r.output.splitlines() if x.startswith("rev@example.org"))
    assert "BLOCKED" in line and "account invited" in line and "background check not recorded" in line
    for kind in KINDS:
        r = runner.invoke(users_app, ["vet", "rev@example.org", kind, *d], env=env)
        assert r.exit_code == 0, r.output
    with deployment.db.session() as s:
        s.execute(update(User).where(User.email == "rev@example.org").values(status="active"))
    r = runner.invoke(users_app, ["list", *d], env=env)
    line = next(x for x in r.output.splitlines() if x.startswith("rev@example.org"))
    assert line.rstrip().endswith("ok")
    r = runner.invoke(users_app, ["disable", "rev@example.org", "--reason", "contract ended", *d], env=env)
    assert r.exit_code == 0
    r = runner.invoke(users_app, ["list", "--json", *d], env=env)
    assert "contract ended" in r.output
    r = runner.invoke(users_app, ["set-role", "adm@example.org", "lead", *d], env=env)
    assert r.exit_code != 0 and "facility" in r.output
    r = runner.invoke(users_app, ["set-role", "adm@example.org", "privacy", *d], env=env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(users_app, ["unlock", "adm@example.org", *d], env=env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(users_app, ["facilities", "list", *d], env=env)
    assert "Cork" in r.output
    assert PASSWORD not in r.output
    assert facility_id(deployment)
