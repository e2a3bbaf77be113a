"""Response hardening on every response (ASVS 3.4.x, 13.4.x, 16.5.x): CSP without inline script,
frame-ancestors 'none', nosniff, Referrer-Policy, HSTS outside loopback, no stack traces, no-store on
anything personal."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.access.helpers import build_app, enrol_and_login, invite


def _check(r, *, hsts: bool) -> None:
    h = r.headers
    csp = h["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert ("strict-transport-security" in h) is hsts


def test_headers_on_pages_api_errors_and_static(client, deployment):
    for r in (
        client.get("/login"),
        client.get("/api/v1/health"),
        client.get("/api/v1/session"),
        client.get("/api/v1/users"),
        client.get("/no/such/page"),
        client.get("/static/access.js"),
        client.get(invite(deployment, "h@example.org", "admin")),
    ):
        _check(r, hsts=False)


def test_hsts_outside_loopback(deployment):
    c = TestClient(build_app(deployment), client=("127.0.0.1", 1), base_url="https://earshot.example.org")
    _check(c.get("/login"), hsts=True)
    _check(c.get("/api/v1/health"), hsts=True)


def test_pages_carry_no_inline_script_or_style(client, deployment):
    enrol_path = invite(deployment, "p@example.org", "admin")
    pages = [client.get("/login").text, client.get(enrol_path).text]
    enrol_and_login(client, deployment, "adm@example.org", "admin")
    pages += [client.get("/admin").text, client.get("/account").text]
    for page in pages:
        assert "<script>" not in page and "<script >" not in page
        assert " style=" not in page and "<style" not in page
        assert " on" + "click=" not in page and "javascript:" not in page
        assert '<script src="/static/' in page or "<script" not in page


def test_personal_pages_are_not_cached(client, deployment):
    enrol_and_login(client, deployment, "adm@example.org", "admin")
    for path in ("/admin", "/account", "/api/v1/session", "/api/v1/users"):
        assert "no-store" in client.get(path).headers.get("cache-control", ""), path


def test_no_stack_trace_reaches_the_client(deployment):
    app = build_app(deployment)

    def boom() -> None:
        raise RuntimeError("secret internal detail /srv/earshot/db password=hunter2")

    app.add_api_route("/api/v1/boom", boom)
    c = TestClient(app, client=("127.0.0.1", 1), base_url="http://127.0.0.1", raise_server_exceptions=False)
    r = c.get("/api/v1/boom")
    assert r.status_code == 500
    assert "secret internal detail" not in r.text and "Traceback" not in r.text and "hunter2" not in r.text


def test_enrolment_token_never_leaves_through_the_referrer(client, deployment):
    path = invite(deployment, "ref@example.org", "admin")
    page = client.get(path)
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<meta name="referrer" content="no-referrer">' in page.text
    assert "http://" not in page.text.split("<main>")[1]  # no external links on the enrolment page
