"""The review API and pages over HTTP, signed in like a person; attacker-side checks included."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from tests.access.helpers import build_app, enrol_and_login


@pytest.fixture
def people(deployment, pool):
    """Signed-in clients: two vetted reviewers, an unvetted one, a lead and an admin."""
    app = build_app(deployment)
    made = []

    def signed_in(email, role, vetted=True, port=0):
        c = TestClient(
            app,
            client=("127.0.0.1", 41000 + port),
            base_url="http://127.0.0.1",
            headers={"user-agent": f"browser-{email}"},
        )
        c.__enter__()
        made.append(c)
        who = enrol_and_login(c, deployment, email, role, vetted=vetted)
        c.headers["X-CSRF-Token"] = who["csrf"]
        c.who = who
        return c

    out = {
        "alice": signed_in("alice@example.org", "reviewer", port=1),
        "bob": signed_in("bob@example.org", "reviewer", port=2),
        "newbie": signed_in("newbie@example.org", "reviewer", vetted=False, port=3),
        "lead": signed_in("lead@example.org", "lead", port=4),
        "admin": signed_in("admin@example.org", "admin", port=5),
    }
    yield out
    for c in made:
        c.__exit__(None, None, None)


def _play(c, task):
    url = c.post(task["media_url"]).json()["url"]
    r = c.get(url)
    assert r.status_code == 200
    return url, r


def test_reviewer_flow_and_single_use_audio(pool, people):
    pool.fill(2, graders=2)
    alice = people["alice"]
    task = alice.get("/api/v1/tasks/next").json()
    assert set(task) >= {"assignment_id", "transcript", "duration_s", "media_url"}
    assert "snippet_id" not in task and "recording_id" not in task and "customer_id" not in task
    aid = task["assignment_id"]
    assert (
        alice.post(f"/api/v1/tasks/{aid}/grade", json={"transcript": "x", "accuracy": 3}).status_code == 409
    )
    assert alice.post(f"/api/v1/tasks/{aid}/played").status_code == 409  # nothing fetched yet
    url, r = _play(alice, task)
    assert r.headers["content-type"] == "audio/wav" and r.content[:4] == b"RIFF"
    assert "no-store" in r.headers["cache-control"] and r.headers["content-disposition"] == "inline"
    assert alice.get(url).status_code == 404  # single use
    time.sleep(0.3)
    assert alice.post(f"/api/v1/tasks/{aid}/played").status_code == 204
    body = {"transcript": "turn on the kitchen lights", "accuracy": 4, "intent_correct": True, "flags": []}
    assert alice.post(f"/api/v1/tasks/{aid}/grade", json=body).status_code == 201
    assert alice.post(f"/api/v1/tasks/{aid}/grade", json=body).status_code == 404  # replay
    assert alice.get(f"/api/v1/tasks/{aid}").json() == {"state": "gone"}
    nxt = alice.get("/api/v1/tasks/next").json()
    assert nxt["assignment_id"] != aid


def test_csrf_and_other_reviewers_work(pool, people):
    pool.fill(2, graders=2)
    alice, bob = people["alice"], people["bob"]
    task = alice.get("/api/v1/tasks/next").json()
    aid = task["assignment_id"]
    r = alice.post(task["media_url"], headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    url = alice.post(task["media_url"]).json()["url"]
    assert bob.get(url).status_code == 404  # another reviewer cannot use alice's URL
    assert alice.get(url).status_code == 200  # bob's refused attempt did not spend it
    for method, path, body in (
        ("GET", f"/api/v1/tasks/{aid}", None),
        ("POST", f"/api/v1/tasks/{aid}/media", {}),
        ("POST", f"/api/v1/tasks/{aid}/played", {}),
        ("POST", f"/api/v1/tasks/{aid}/grade", {"transcript": "x", "accuracy": 3}),
        ("POST", f"/api/v1/tasks/{aid}/skip", {"reason": "other"}),
        ("POST", f"/api/v1/tasks/{aid}/flag", {"kind": "sensitive"}),
    ):
        r = bob.request(method, path, json=body)
        if method == "GET":
            assert r.json() == {"state": "gone"}
        else:
            assert r.status_code == 404, (path, r.status_code)


def test_unvetted_reviewer_gets_nothing(pool, people):
    pool.fill(1)
    assert people["newbie"].get("/api/v1/tasks/next").status_code == 403
    assert people["newbie"].get("/review").status_code == 403


def test_sensitive_flag_withdraws_from_other_reviewers(pool, people):
    pool.fill(1, graders=2)
    alice, bob, lead = people["alice"], people["bob"], people["lead"]
    ta, tb = alice.get("/api/v1/tasks/next").json(), bob.get("/api/v1/tasks/next").json()
    assert bob.get(f"/api/v1/tasks/{tb['assignment_id']}").json() == {"state": "active"}
    assert (
        alice.post(f"/api/v1/tasks/{ta['assignment_id']}/flag", json={"kind": "sensitive"}).status_code == 422
    )
    _play(alice, ta)
    r = alice.post(f"/api/v1/tasks/{ta['assignment_id']}/flag", json={"kind": "sensitive"})
    assert r.status_code == 200 and r.json()["outcome"] == "escalated"
    assert bob.get(f"/api/v1/tasks/{tb['assignment_id']}").json() == {"state": "gone"}
    assert bob.post(tb["media_url"]).status_code == 404
    assert bob.get("/api/v1/tasks/next").status_code == 204
    esc = lead.get("/api/v1/escalations").json()
    assert [e["kind"] for e in esc] == ["sensitive"]
    eid = esc[0]["escalation_id"]
    assert lead.get(f"/api/v1/escalations/{eid}/audio").content[:4] == b"RIFF"
    assert lead.get(f"/escalations/{eid}").status_code == 200
    assert (
        lead.post(f"/api/v1/escalations/{eid}/resolve", json={"action": "keep_for_safety"}).json()[
            "resolution"
        ]
        == "kept_for_safety"
    )
    assert lead.get("/api/v1/escalations").json() == []


def test_roles_on_lead_pages(pool, people):
    pool.fill(1)
    for path in ("/lead", "/api/v1/lead/reviewers", "/api/v1/escalations", "/api/v1/adjudications"):
        assert people["lead"].get(path).status_code == 200, path
        assert people["admin"].get(path).status_code == 403, path
        assert people["alice"].get(path).status_code == 403, path
    for who in ("lead", "admin"):
        counts = people[who].get("/api/v1/queue/counts").json()
        assert counts["queued"] == 1
        page = people[who].get("/queue")
        assert page.status_code == 200 and "transcript" not in page.text.lower().replace("transcripts", "")
    assert people["alice"].get("/api/v1/queue/counts").status_code == 403
    assert people["lead"].get("/api/v1/tasks/next").status_code == 403  # leads do not grade


def test_review_page_has_no_inline_script(pool, people):
    pool.fill(1)
    page = people["alice"].get("/review")
    assert page.status_code == 200 and "no-store" in page.headers["cache-control"]
    assert 'id="task"' in page.text and "/static/vendor/wavesurfer-7.12.12.min.js" in page.text
    assert "<script>" not in page.text and "style=" not in page.text and " on" + "click=" not in page.text
    assert people["alice"].get("/static/review.js").status_code == 200


def test_disagreement_adjudicated_by_the_lead_and_made_gold(pool, people):
    sid = pool.fill(1, graders=2)[0]
    for name, text, acc in (("alice", "switch on the light", 5), ("bob", "switch off the night", 1)):
        c = people[name]
        task = c.get("/api/v1/tasks/next").json()
        _play(c, task)
        time.sleep(0.3)
        assert c.post(f"/api/v1/tasks/{task['assignment_id']}/played").status_code == 204
        body = {"transcript": text, "accuracy": acc}
        assert c.post(f"/api/v1/tasks/{task['assignment_id']}/grade", json=body).status_code == 201
    lead = people["lead"]
    queue = lead.get("/api/v1/adjudications").json()
    assert [q["snippet_id"] for q in queue] == [sid]
    view = lead.get(f"/api/v1/adjudications/{sid}").json()
    assert sorted(g["transcript"] for g in view["graders"]) == ["switch off the night", "switch on the light"]
    assert people["admin"].get(f"/api/v1/adjudications/{sid}").status_code == 403
    assert people["alice"].get(f"/api/v1/adjudications/{sid}").status_code == 403
    page = lead.get(f"/adjudications/{sid}")
    assert page.status_code == 200 and "switch off the night" in page.text
    r = lead.post(
        f"/api/v1/adjudications/{sid}", json={"transcript": "switch on the light", "make_gold": True}
    )
    assert r.status_code == 200
    assert lead.get("/api/v1/adjudications").json() == []
    assert lead.get("/api/v1/queue/counts").json()["gold"] == 1
