"""The reviewer's day in a real browser: play a snippet to the end, correct it with the keyboard, submit;
flag one as sensitive and watch it vanish from every reviewer's queue; the lead handles it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from earshot.review.models import Escalation, Grade, Snippet
from tests.browser.conftest import open_page, sign_in

pytestmark = pytest.mark.slow


def test_play_to_the_end_correct_with_the_keyboard_and_submit(site, browser):
    rec = site.pool.recording(site.pool.customer())
    site.pool.snippet(rec, text="turn on the kitchen light", graders=2, seconds=1.5)
    alice = site.account("alice@example.org", "reviewer")
    page = open_page(browser)
    sign_in(page, site, alice)
    page.wait_for_selector("#task")
    assert page.is_disabled("#submit")  # nothing heard yet
    assert page.locator("#diff del, #diff ins").count() == 0
    page.keyboard.press("Space")  # play
    page.wait_for_selector("#heard.ok", timeout=30_000)  # played to the end, and the server agreed
    assert (
        page.locator("#waveform").evaluate(
            "el => el.querySelector('div').shadowRoot.querySelectorAll('canvas').length"
        )
        > 0
    )
    assert page.is_enabled("#submit")

    page.keyboard.press("e")  # into the transcript
    page.keyboard.press("End")
    page.keyboard.press("Backspace")
    page.keyboard.type("ts please")
    page.keyboard.press("Escape")  # back to shortcuts
    page.keyboard.press("4")
    page.keyboard.press("y")
    assert page.input_value("#transcript") == "turn on the kitchen lights please"
    assert page.locator("#diff del").all_inner_texts() == ["light"]
    assert page.locator("#diff ins").all_inner_texts() == ["lights", "please"]
    assert page.is_checked('input[name="accuracy"][value="4"]')
    page.keyboard.press("]")  # faster
    assert page.inner_text("#speed") == "1.25×"
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#empty", timeout=15_000)  # the only snippet is done for alice

    dep = site.deployment
    with dep.db.session() as s:
        grade = s.scalars(select(Grade)).one()
        assert grade.accuracy == 4 and grade.intent_correct is True and grade.reviewer_id == alice["user_id"]
        snippet = s.get(Snippet, grade.snippet_id)
        text = dep.vault.open_text(s, snippet.customer_id, f"grade:{grade.id}:text", grade.transcript_enc)
        assert text == "turn on the kitchen lights please"
    assert page.csp_violations == []
    assert page.external_requests == []


def test_sensitive_flag_vanishes_from_every_queue(site, browser):
    rec = site.pool.recording(site.pool.customer())
    sid = site.pool.snippet(rec, text="please help me he is here again", graders=3, seconds=2.0)
    alice = site.account("alice@example.org", "reviewer")
    bob = site.account("bob@example.org", "reviewer")
    lead = site.account("lead@example.org", "lead")
    pa, pb = open_page(browser), open_page(browser)
    sign_in(pa, site, alice)
    sign_in(pb, site, bob)
    pa.wait_for_selector("#task")
    pb.wait_for_selector("#task")  # both hold a lease on the same snippet

    pa.keyboard.press("Space")
    pa.wait_for_function(
        "() => !document.getElementById('time').textContent.startsWith('0.0 ')", timeout=20_000
    )
    pa.keyboard.press("s")
    assert pa.is_visible("#confirm")
    pa.keyboard.press("Enter")
    pa.wait_for_selector("#empty", timeout=15_000)  # alice's queue: gone

    # bob's page notices within the poll interval, drops the audio and moves on: nothing left for him
    pb.wait_for_selector("#task.withdrawn", timeout=15_000)
    assert "withdrawn" in pb.inner_text("#status")
    pb.wait_for_selector("#empty", timeout=15_000)

    # a third reviewer arriving later never sees it
    carol = site.account("carol@example.org", "reviewer")
    pc = open_page(browser)
    sign_in(pc, site, carol)
    pc.wait_for_selector("#empty")

    # the lead finds it in the lead-only queue and keeps it for the safety team
    pl = open_page(browser)
    sign_in(pl, site, lead, home="/lead")
    assert pl.locator("#escalations tr[data-escalation]").count() == 1
    pl.click("#escalations a")
    pl.wait_for_url(re.compile(r".*/escalations/.*"))
    pl.click("button[value=keep_for_safety]")
    pl.wait_for_url(re.compile(r".*/lead$"))
    assert pl.locator("#escalations").count() == 0
    with site.deployment.db.session() as s:
        assert s.get(Snippet, sid).status == "safety_hold"
        esc = s.scalars(select(Escalation)).one()
        assert esc.resolution == "kept_for_safety" and esc.resolved_by == lead["user_id"]
    for p in (pa, pb, pc, pl):
        assert p.csp_violations == [] and p.external_requests == []
