"""The authorisation matrix: every route of the app (every path in the OpenAPI document, plus the HTML
pages) x every role and no session, against the one policy table (ASVS 8.1.1, 8.2.1, 8.2.2, 8.3.1)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from earshot.access import policy
from earshot.audit.models import AuditRecord
from tests.access.helpers import enrol_and_login

IDENTITIES = ("none", *policy.ROLES)


def app_routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every endpoint, including routers included into the app."""
    out = set()

    def walk(routes):
        for r in routes:
            if hasattr(r, "original_router"):
                walk(r.original_router.routes)
            elif hasattr(r, "methods") and r.methods:
                for m in r.methods - {"HEAD", "OPTIONS"}:
                    out.add((m, r.path))

    walk(app.routes)
    return sorted(out)


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x0000", path)


@pytest.fixture
def identities(app, deployment, new_client):
    clients = {"none": (new_client(port=40000), "")}
    for i, role in enumerate(policy.ROLES):
        c = new_client(port=40001 + i, user_agent=f"browser-{role}")
        who = enrol_and_login(c, deployment, f"{role}@example.org", role, vetted=role in ("reviewer", "lead"))
        clients[role] = (c, who["csrf"])
    return clients


def call(client, csrf, method, path):
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    return client.request(method, concrete(path), headers=headers, follow_redirects=False)


def test_every_route_is_in_the_policy_table_and_the_table_is_sound(app):
    routes = app_routes(app)
    unlisted = [
        f"{m} {p}" for m, p in routes if policy.classify(m, p) == "unlisted" and not p.startswith("/static")
    ]
    assert not unlisted, f"routes missing from earshot/access/policy.py: {unlisted}"
    known = set(routes)
    stale = [f"{m} {p}" for (m, p) in policy.ROUTE_ROLES if (m, p) not in known]
    assert not stale, f"policy entries for routes that do not exist: {stale}"
    assert policy.check_invariants() == []
    openapi = app.openapi()["paths"]
    for path, ops in openapi.items():
        for method in ops:
            assert (method.upper(), path) in known


def test_separation_of_duties_in_the_table():
    content = [k for k in policy.ROUTE_ROLES if policy.is_content_route(k[1])]
    assert content, "audio/transcript routes are expected in the table"
    for key in content:
        assert "admin" not in policy.allowed_roles(*key, policy.STAFF), key
    for key, roles in policy.ROUTE_ROLES.items():
        if "export" in key[1]:
            assert "reviewer" not in roles
        if key[1].startswith(("/api/v1/users", "/admin")):
            assert roles == frozenset({"admin"}), key
    # A view that declares more than the table allows gets only the table's roles.
    assert policy.allowed_roles("GET", "/api/v1/tasks/next", policy.STAFF) == frozenset({"reviewer"})


def test_full_matrix(app, identities, deployment):
    failures = []
    for method, path in app_routes(app):
        kind = policy.classify(method, path)
        if path.startswith("/static") or kind == "public":
            continue
        allowed = policy.ROUTE_ROLES.get((method, path), frozenset())
        for who in IDENTITIES:
            if kind == "step" and who != "none":
                continue  # the half-way steps of sign-in; covered by the enrolment and login tests
            client, csrf = identities[who]
            r = call(client, csrf, method, path)
            html = not path.startswith("/api/")
            if who == "none":
                ok = r.status_code in (401, 403) or (
                    html and r.status_code == 303 and r.headers["location"].startswith(("/login", "/"))
                )
                expect = "401/403 (or 303 to /login)"
            elif kind == "service":
                ok, expect = r.status_code in (401, 403), "401/403: product token only"
            elif who in allowed:
                ok, expect = r.status_code not in (401, 403) and r.status_code < 500, "allowed"
            else:
                ok, expect = r.status_code == 403, "403"
            if not ok:
                failures.append(f"{who:<8} {method} {path}: {r.status_code}, expected {expect}")
    assert not failures, "\n".join(failures)
    with deployment.db.session() as s:
        denied = s.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "authz.denied")
        )
    assert denied > 0


def test_admin_can_neither_hear_audio_nor_read_transcripts(app, identities):
    client, csrf = identities["admin"]
    for method, path in app_routes(app):
        if policy.is_content_route(path):
            assert call(client, csrf, method, path).status_code in (403, 404, 405), path


def test_unauthenticated_api_is_closed_except_login_enrolment_and_health(app, identities):
    client, _ = identities["none"]
    open_api = {
        ("POST", "/api/v1/session"),
        ("POST", "/api/v1/webauthn/login/options"),
        ("POST", "/api/v1/webauthn/login/verify"),
        ("GET", "/api/v1/health"),
    }
    for method, path in app_routes(app):
        if not path.startswith("/api/") or (method, path) in open_api:
            continue
        assert call(client, "", method, path).status_code in (401, 403), f"{method} {path}"
