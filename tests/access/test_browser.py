"""End to end in a real browser: headless Chromium (Debian's) with its virtual WebAuthn authenticator,
against the app served by uvicorn on loopback. Enrolment with a passkey, recovery codes, sign-out, sign-in
with the passkey alone; enrolment with TOTP through the forms; no CSP violation on any page."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time

import pytest

from tests.access.helpers import PASSWORD, build_app, invite, totp_code

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-dev-shm-usage",
]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(make_deployment):
    """The app on 127.0.0.1:<port>, addressed as http://localhost:<port> (a valid WebAuthn RP id)."""
    pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium is not installed (make test installs it)")
    import uvicorn

    port = _free_port()
    dep = make_deployment(base_url=f"http://localhost:{port}")
    server = uvicorn.Server(uvicorn.Config(build_app(dep), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started
    yield dep, f"http://localhost:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context()
        pg = context.new_page()
        violations: list[str] = []
        pg.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        pg.csp_violations = violations  # type: ignore[attr-defined]
        yield pg
        context.close()
        browser.close()


def _virtual_authenticator(page) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )


def test_passkey_enrolment_and_sign_in_in_chromium(served, page):
    dep, base = served
    _virtual_authenticator(page)
    page.goto(base + invite(dep, "browser@example.org", "privacy"))
    page.fill("#password", PASSWORD)
    page.fill("#password_again", PASSWORD)
    page.click("#enrol-submit")
    page.wait_for_url(base + "/enrol/mfa")
    page.click("#passkey-register")
    page.wait_for_url(base + "/enrol/done", timeout=15000)
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    page.click("#continue")
    page.wait_for_url(base + "/account")
    assert "privacy" in page.inner_text("header")
    page.click("header button")  # sign out
    page.wait_for_url(re.compile(r".*/login$"))
    page.click("#passkey-login")
    page.wait_for_url(base + "/account", timeout=15000)
    assert "Signed in as" in page.inner_text("header")
    assert page.csp_violations == []


def test_totp_enrolment_and_password_sign_in_in_chromium(served, page):
    dep, base = served
    page.goto(base + invite(dep, "totp@example.org", "admin"))
    page.fill("#password", PASSWORD)
    page.fill("#password_again", PASSWORD)
    page.click("#enrol-submit")
    page.wait_for_url(base + "/enrol/mfa")
    assert page.locator("figure.qr svg").count() == 1
    secret = page.get_attribute("#totp-secret", "data-secret")
    page.fill("#code", totp_code(secret))
    page.click("#totp-confirm")
    page.wait_for_url(base + "/enrol/done")
    page.click("#continue")
    page.wait_for_url(base + "/admin")
    page.click("header button")
    page.wait_for_url(re.compile(r".*/login$"))
    page.fill("#email", "totp@example.org")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/login/mfa.*"))
    page.fill("#code", totp_code(secret))  # a newer code: the first one cannot be replayed
    page.click("#mfa-submit")
    page.wait_for_url(base + "/admin")
    assert "admin" in page.inner_text("header .role")
    assert page.csp_violations == []
