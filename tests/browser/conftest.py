"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against the app on loopback.

Never `playwright install`: the browser is the system package. Tests skip with a reason when Playwright
or Chromium is missing.
"""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from earshot.access.models import User
from earshot.intake.models import Product
from earshot.review.policy import ReviewPolicy, set_policy
from tests.access.helpers import build_app, enrol, invite, totp_code, vet
from tests.review.helpers import Pool

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Site:
    """The served app: its deployment, base URL, snippet pool and accounts made so far."""

    deployment: Any
    base: str
    pool: Pool
    accounts: dict[str, dict[str, str]] = field(default_factory=dict)

    def account(self, email: str, role: str) -> dict[str, str]:
        """Invite and enrol (password + TOTP, over HTTP like a browser would), then record vetting."""
        import httpx

        with httpx.Client(base_url=self.base) as http:
            enrolled = enrol(http, invite(self.deployment, email, role))
        with self.deployment.db.session() as s:
            user_id = s.scalar(select(User.id).where(User.email == email))
        if role in ("reviewer", "lead"):
            vet(self.deployment, user_id)
        self.accounts[email] = {"email": email, "user_id": user_id, **enrolled}
        return self.accounts[email]


@pytest.fixture
def site(make_deployment) -> Iterator[Site]:
    pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')"
    )
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (Debian package chromium; make test installs it)")
    import uvicorn

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    dep = make_deployment(base_url=base)
    set_policy(dep, ReviewPolicy(gold_rate=0.0))
    with dep.db.session() as s:
        product = Product(name="assistant", token_hash=secrets.token_hex(32), graders_per_snippet=2)
        s.add(product)
        s.flush()
        pool = Pool(dep, product.id)
    server = uvicorn.Server(uvicorn.Config(build_app(dep), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield Site(dep, base, pool)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def open_page(browser: Any) -> Any:
    """A fresh browser profile (its own cookies) whose CSP violations and failed requests are collected."""
    context = browser.new_context()
    page = context.new_page()
    page.csp_violations = []  # type: ignore[attr-defined]
    page.external_requests = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda m: page.csp_violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on(
        "request",
        lambda r: (
            page.external_requests.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "blob:", "data:"))
            else None
        ),
    )
    return page


def sign_in(page: Any, site: Site, who: dict[str, str], home: str = "/review") -> None:
    """Password, then the next TOTP code, through the sign-in forms."""
    page.goto(site.base + "/login")
    page.fill("#email", who["email"])
    page.fill("#password", who["password"])
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/login/mfa.*"))
    page.fill("#code", totp_code(who["totp_secret"]))
    page.click("#mfa-submit")
    page.wait_for_url(re.compile(r".*/(review|lead|account|admin).*"))
    if not page.url.endswith(home):
        page.goto(site.base + home)
