"""Erasure by crypto-shredding: one key destroyed makes every copy unreadable, then everything is removed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from earshot.audit.models import AuditRecord
from earshot.deployment import Deployment
from earshot.intake.models import Recording
from earshot.privacy.erasure import erase_and_purge, erase_customer, purge_erasure, purge_pending_erasures
from earshot.privacy.export import customer_export
from earshot.privacy.models import ConsentEvent, Customer, ErasedSnippet, Erasure
from earshot.privacy.services import find_customer, lookup_hash, set_consent
from earshot.review import services as review
from earshot.review.models import Assignment, Grade, Snippet
from earshot.vault.models import CustomerKey
from earshot.vault.services import VaultError
from tests.privacy import helpers as h


def _held(dep: Deployment, external_id: str, n: int, *, raw: bool = True) -> dict:
    """A customer with one recording (raw audio kept) and `n` snippets, one graded and one leased."""
    with dep.db.session() as s:
        prod, _ = h.product(s, f"p-{external_id}")
        rec = h.recording(s, dep, prod, external_id, status="pending" if raw else "processed", raw=raw)
        snips = [h.snippet(s, dep, rec, position=i, text=f"snippet {i}") for i in range(n)]
        alice = h.reviewer(s, f"alice-{external_id}@example.org")
        bob = h.reviewer(s, f"bob-{external_id}@example.org", "Berlin", "DE")
        h.grade(s, dep, snips[0], alice)
        leased = h.lease(s, snips[-1], bob) if n > 1 else None
        customer = find_customer(s, dep, external_id)
        return {
            "pseudonym": customer.id,
            "blobs": [x.audio_blob_id for x in snips] + ([rec.raw_blob_id] if raw else []),
            "snippets": [x.id for x in snips],
            "bob": bob.id,
            "lease": leased.id if leased else None,
            "recording": rec.id,
        }


def _blob_path(dep: Deployment, blob_id: str) -> Path:
    return dep.settings.blob_dir / blob_id[:2] / blob_id


def test_a_copy_taken_before_erasure_no_longer_decrypts(deployment: Deployment, tmp_path: Path) -> None:
    held = _held(deployment, "c1", 3)
    backup = tmp_path / "backup"
    backup.mkdir()
    for blob_id in held["blobs"]:  # an attacker's (or a backup's) copy of the ciphertext
        shutil.copy(_blob_path(deployment, blob_id), backup / blob_id)
    with deployment.db.session() as s:
        assert deployment.vault.get_blob(s, held["pseudonym"], held["blobs"][0])  # readable before
    with deployment.db.session() as s:
        erase_customer(s, deployment, "c1", actor="cli:privacy")
    # Step 1 alone (key destroyed, nothing else removed yet): no copy decrypts any more.
    for blob_id in held["blobs"]:
        deployment.blobs.put(blob_id, (backup / blob_id).read_bytes())  # restore the backup copy
        with deployment.db.session() as s, pytest.raises(VaultError):
            deployment.vault.get_blob(s, held["pseudonym"], blob_id)
    with deployment.db.session() as s:
        assert s.get(CustomerKey, held["pseudonym"]) is None
        rows = list(s.scalars(select(Snippet).where(Snippet.customer_id == held["pseudonym"])))
        for row in rows:  # the transcripts in database rows (and in any dump of them) are gone too
            with pytest.raises(VaultError):
                deployment.vault.open_text(s, row.customer_id, f"snippet:{row.id}:text", row.transcript_enc)


def test_no_reviewer_can_be_served_their_audio(deployment: Deployment) -> None:
    held = _held(deployment, "c1", 3, raw=False)
    with deployment.db.session() as s:
        assert review.task_audio(s, deployment, held["bob"], held["lease"])  # served before
    with deployment.db.session() as s:
        report = erase_customer(s, deployment, "c1", actor="cli:privacy")
    with deployment.db.session() as s:  # after the shred, before the purge: "no such task", not a 500
        with pytest.raises(review.NotFound):
            review.task_audio(s, deployment, held["bob"], held["lease"])
        with pytest.raises(review.NotFound):
            review.task_view(s, deployment, held["bob"], held["lease"])
    purge_erasure(deployment, report.erasure_id)
    with deployment.db.session() as s, pytest.raises(review.NotFound):
        review.task_audio(s, deployment, held["bob"], held["lease"])


def test_everything_is_removed_and_tombstoned(deployment: Deployment) -> None:
    held = _held(deployment, "c1", 4)
    keep = _held(deployment, "c2", 2)
    report = erase_and_purge(deployment, "c1", actor="cli:privacy")
    assert report.status == "purged" and report.snippets == 4 and report.recordings == 1 and report.blobs == 5
    with deployment.db.session() as s:
        p = held["pseudonym"]
        assert s.get(Customer, p) is None
        for model, col in (
            (Snippet, Snippet.customer_id),
            (Recording, Recording.customer_id),
            (ConsentEvent, ConsentEvent.customer_id),
            (Assignment, Assignment.customer_id),
        ):
            assert s.scalar(select(func.count()).select_from(model).where(col == p)) == 0, model
        assert (
            s.scalar(select(func.count()).select_from(Grade).where(Grade.snippet_id.in_(held["snippets"])))
            == 0
        )
        tombs = {t.snippet_id: t.reason for t in s.scalars(select(ErasedSnippet))}
        assert tombs == {sid: "erasure" for sid in held["snippets"]}
        # The other customer is untouched.
        assert (
            s.scalar(
                select(func.count()).select_from(Snippet).where(Snippet.customer_id == keep["pseudonym"])
            )
            == 2
        )
        assert deployment.vault.get_blob(s, keep["pseudonym"], keep["blobs"][0])
    assert not any(deployment.blobs.exists(b) for b in held["blobs"])
    assert all(deployment.blobs.exists(b) for b in keep["blobs"])


def test_export_lists_nothing_and_the_link_is_gone(deployment: Deployment) -> None:
    _held(deployment, "c1", 2)
    erase_and_purge(deployment, "c1", actor="cli:privacy")
    with deployment.db.session() as s:
        doc = customer_export(s, deployment, "c1", actor="cli:privacy")
        assert doc["held"] is False and doc["snippets"] == [] and doc["consent_history"] == []
        assert find_customer(s, deployment, "c1") is None
        assert s.scalar(select(Customer).where(Customer.lookup_hash == lookup_hash(deployment, "c1"))) is None


def test_link_is_cut_at_once_and_intake_refuses(deployment: Deployment) -> None:
    held = _held(deployment, "c1", 1)
    with deployment.db.session() as s:
        erase_customer(s, deployment, "c1", actor="cli:privacy")
    with deployment.db.session() as s:  # before any purge
        assert find_customer(s, deployment, "c1") is None
        customer = s.get(Customer, held["pseudonym"])
        assert customer.lookup_hash is None and not customer.consented and customer.erased_at
        assert s.get(Recording, held["recording"]).status == "erased"
        # Consenting again later creates a new, unrelated pseudonym.
        again = set_consent(s, deployment, "c1", granted=True)
        assert again.id != held["pseudonym"]


def test_audit_log_records_erasure_without_the_customer_id_and_still_verifies(deployment: Deployment) -> None:
    verify = pytest.importorskip("earshot.audit.verify")
    from earshot.audit.context import install

    install(deployment)  # records get their MACs (the deployment normally does this when it opens)
    external = "customer-4711@product.example"
    held = _held(deployment, external, 2)
    with deployment.db.session() as s:
        hashed = lookup_hash(deployment, external)
    report = erase_and_purge(deployment, external, actor="cli:privacy")
    with deployment.db.session() as s:
        records = list(s.scalars(select(AuditRecord).order_by(AuditRecord.seq)))
        actions = [(r.action, r.target) for r in records]
        assert ("customer.erased", held["pseudonym"]) in actions
        assert ("customer.purged", held["pseudonym"]) in actions
        for r in records:
            blob = " ".join(str(x) for x in (r.actor, r.action, r.target, r.ip, r.details))
            assert external not in blob and hashed not in blob
        assert any(report.erasure_id in r.details for r in records)
    result = verify.verify_deployment(deployment)
    assert result.ok, result.summary()


def test_erasure_cost_does_not_depend_on_what_is_held(deployment: Deployment) -> None:
    """Step 1 issues the same SQL statements, and no blob-store call, for 1 or 60 snippets."""
    _held(deployment, "small", 1)
    _held(deployment, "large", 60)

    def statements(external_id: str) -> tuple[int, int]:
        seen: list[str] = []
        blob_calls: list[str] = []

        def on_exec(conn, cursor, statement, params, context, executemany):  # noqa: ANN001, ARG001
            seen.append(statement)

        engine = deployment.db.engine
        original = deployment.blobs.delete
        deployment.blobs.delete = lambda blob_id: blob_calls.append(blob_id)  # type: ignore[method-assign]
        try:
            with deployment.db.session() as s:
                # Counted up to the commit (after it, an audit checkpoint may run in its own transaction).
                event.listen(engine, "before_cursor_execute", on_exec)
                try:
                    assert erase_customer(s, deployment, external_id, actor="cli:privacy") is not None
                finally:
                    event.remove(engine, "before_cursor_execute", on_exec)
        finally:
            deployment.blobs.delete = original  # type: ignore[method-assign]
        return len(seen), len(blob_calls)

    small, large = statements("small"), statements("large")
    assert small == large and small[1] == 0


def test_unknown_customer_and_repeated_purge(deployment: Deployment) -> None:
    with deployment.db.session() as s:
        assert erase_customer(s, deployment, "nobody", actor="cli:privacy") is None
    _held(deployment, "c1", 2)
    with deployment.db.session() as s:
        report = erase_customer(s, deployment, "c1", actor="cli:privacy")
    with deployment.db.session() as s:
        assert erase_customer(s, deployment, "c1", actor="cli:privacy") is None  # already unlinked
    assert purge_pending_erasures(deployment) == 1  # e.g. the process died before purging
    again = purge_erasure(deployment, report.erasure_id)
    assert again.status == "purged" and again.snippets == 2
    with deployment.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Erasure)) == 1


def test_erasure_api(api, deployment: Deployment) -> None:  # noqa: ANN001
    held = _held(deployment, "c1", 3)
    with deployment.db.session() as s:
        _, token = h.product(s, "api-product")
    auth = {"Authorization": f"Bearer {token}"}
    assert api.delete("/api/v1/customers/c1").status_code == 401
    r = api.delete("/api/v1/customers/c1", headers=auth)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "shredded" and body["erasure_id"] and body["shredded_at"]
    # The purge ran as a background task after the answer.
    receipt = api.get(f"/api/v1/erasures/{body['erasure_id']}", headers=auth).json()
    assert receipt["status"] == "purged" and receipt["snippets"] == 3 and receipt["recordings"] == 1
    assert not any(deployment.blobs.exists(b) for b in held["blobs"])
    again = api.delete("/api/v1/customers/c1", headers=auth)
    assert again.status_code == 200 and again.json()["status"] == "not_held"
    assert api.get("/api/v1/erasures/0000", headers=auth).status_code == 404
    export = api.get("/api/v1/customers/c1/export", headers=auth).json()
    assert export["held"] is False and export["snippets"] == []

