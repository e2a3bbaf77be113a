"""Export of what is held (Art. 15/20) and the record of processing (Art. 30)."""

from __future__ import annotations

import json

from earshot.access.models import Facility
from earshot.deployment import Deployment
from earshot.privacy.export import customer_export
from earshot.privacy.report import processing_record
from earshot.privacy.services import set_consent
from tests.privacy import helpers as h

EXTERNAL = "customer-0042@product.example"


def _customer_with_history(dep: Deployment) -> dict[str, str]:
    with dep.db.session() as s:
        prod, _ = h.product(s)
        set_consent(s, dep, EXTERNAL, granted=True, text_version="2025-01", source="api")
        rec = h.recording(s, dep, prod, EXTERNAL)
        graded = h.snippet(s, dep, rec, position=0, text="call [NAME] tomorrow")
        waiting = h.snippet(s, dep, rec, position=1, text="at nine")
        alice = h.reviewer(s, "alice@example.org", "Dublin 1", "IE")
        bob = h.reviewer(s, "bob@example.org", "Berlin", "DE")
        h.grade(s, dep, graded, alice, text="call [NAME] tomorrow morning")
        h.lease(s, waiting, bob)
        other = h.recording(s, dep, prod, "other-customer")
        h.snippet(s, dep, other, text="someone else")
        return {"graded": graded.id, "waiting": waiting.id, "alice": alice.id, "bob": bob.id}


def test_export_lists_what_is_held_and_where_it_was_heard_not_by_whom(deployment: Deployment) -> None:
    ids = _customer_with_history(deployment)
    with deployment.db.session() as s:
        doc = customer_export(s, deployment, EXTERNAL, actor="cli:privacy")
    assert doc["held"] is True
    assert [(e["action"], e["text_version"]) for e in doc["consent_history"]] == [("grant", "2025-01")]
    snippets = {x["id"]: x for x in doc["snippets"]}
    assert set(snippets) == {ids["graded"], ids["waiting"]}
    graded, waiting = snippets[ids["graded"]], snippets[ids["waiting"]]
    assert graded["status"] == "graded" and graded["created_at"] and graded["graded_at"]
    assert graded["machine_transcript"] == "call [NAME] tomorrow"
    assert [t["transcript"] for t in graded["reviewer_transcripts"]] == ["call [NAME] tomorrow morning"]
    assert graded["heard_in_facilities"] == [{"name": "Dublin 1", "country": "IE"}]
    assert waiting["status"] == "queued" and waiting["heard_in_facilities"] == [
        {"name": "Berlin", "country": "DE"}
    ]
    assert waiting["audio_held"] and waiting["deleted_by"]
    assert len(doc["recordings"]) == 1
    text = json.dumps(doc)
    for secret in (
        "alice@example.org",
        "bob@example.org",
        ids["alice"],
        ids["bob"],
        EXTERNAL,
        "someone else",
    ):
        assert secret not in text


def test_export_api(api, deployment: Deployment) -> None:  # noqa: ANN001
    ids = _customer_with_history(deployment)
    with deployment.db.session() as s:
        _, token = h.product(s, "api-product")
    assert api.get(f"/api/v1/customers/{EXTERNAL}/export").status_code == 401
    r = api.get(f"/api/v1/customers/{EXTERNAL}/export", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert {x["id"] for x in r.json()["snippets"]} == {ids["graded"], ids["waiting"]}


def test_processing_record_reflects_live_configuration(make_deployment) -> None:  # noqa: ANN001
    dep = make_deployment(
        retention_after_consolidation_days=14,
        retention_max_age_days=90,
        controller_name="Example Voice GmbH",
        allowed_countries=["IE", "DE", "IN"],
    )
    with dep.db.session() as s:
        h.product(s, "call-translator")
        h.reviewer(s, "a@example.org", "Dublin 1", "IE")
        h.reviewer(s, "b@example.org", "Dublin 1", "IE")
        s.add(Facility(name="Pune", country="IN", networks="10.9.0.0/16"))
        s.flush()
        md = processing_record(s, dep)
    assert md.startswith("# Record of processing activities")
    assert "Example Voice GmbH" in md and "call-translator" in md
    assert "| Dublin 1 | IE | 2 | 0 | none (EEA) |" in md
    assert "| Pune | IN | 0 | 0 | Art. 46" in md
    assert "14 days after grading" in md and "90 days after receipt" in md
    assert "postgresql://" not in md and "sqlite:///" not in md  # never the database URL
