"""Escalation flags and the lead's handling, from the reviewer's, the other reviewers' and the lead's side."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from earshot.audit.models import AuditRecord
from earshot.review import escalation, services
from earshot.review.models import Assignment, Escalation, Snippet
from earshot.review.wav import decode_wav


def _lease(pool, reviewer, fetch=True):
    dep = pool.deployment
    with dep.db.session() as s:
        aid = services.next_assignment(s, dep, reviewer).id
    if fetch:
        with dep.db.session() as s:
            services.task_audio(s, dep, reviewer, aid)
    return aid


def _actions(dep, action):
    with dep.db.session() as s:
        return s.scalars(select(AuditRecord).where(AuditRecord.action == action)).all()


def test_sensitive_leaves_every_queue_at_once(pool):
    sid = pool.fill(1, graders=3)[0]
    dep = pool.deployment
    alice, bob, carol = pool.user(), pool.user(), pool.user()
    a = _lease(pool, alice)
    b = _lease(pool, bob, fetch=False)
    pool.fill(1, graders=1)  # something else stays available
    with dep.db.session() as s:
        result = escalation.flag(s, dep, alice, a, "sensitive")
    assert result.outcome == "escalated" and result.revoked == 1
    with dep.db.session() as s:
        assert services.task_state(s, bob, b) == "gone"
        with pytest.raises(services.NotFound):
            services.task_audio(s, dep, bob, b)
        with pytest.raises(services.NotFound):
            services.submit_grade(s, dep, bob, b, transcript="x", accuracy=3)
        assert s.get(Snippet, sid).status == "escalated"
        assert s.get(Assignment, b).status == "revoked"
        got = services.next_assignment(s, dep, carol)
        assert got is None or got.snippet_id != sid
        assert [e.snippet_id for e in escalation.open_escalations(s)] == [sid]
    assert _actions(dep, "snippet.flagged")


def test_flag_needs_the_audio_and_the_lease(pool):
    pool.fill(1)
    dep = pool.deployment
    alice, mallory = pool.user(), pool.user()
    a = _lease(pool, alice, fetch=False)
    with dep.db.session() as s, pytest.raises(services.InvalidGrade):
        escalation.flag(s, dep, alice, a, "sensitive")
    with dep.db.session() as s, pytest.raises(services.NotFound):
        escalation.flag(s, dep, mallory, a, "sensitive")
    with dep.db.session() as s, pytest.raises(services.InvalidGrade):
        escalation.flag(s, dep, alice, a, "boring")


@pytest.mark.parametrize("action,status", [("keep_for_safety", "safety_hold"), ("delete", None)])
def test_lead_handles_sensitive(pool, action, status):
    sid = pool.fill(1)[0]
    dep = pool.deployment
    alice, lead = pool.user(), pool.user("lead")
    a = _lease(pool, alice)
    with dep.db.session() as s:
        esc_id = escalation.flag(s, dep, alice, a, "sensitive").escalation_id
    with dep.db.session() as s:
        assert escalation.escalation_audio(s, dep, lead, esc_id)[:4] == b"RIFF"
        with pytest.raises(services.InvalidGrade):
            escalation.resolve(s, dep, lead, esc_id, "reject")  # not a choice for sensitive content
    with dep.db.session() as s:
        escalation.resolve(s, dep, lead, esc_id, action)
    with dep.db.session() as s:
        esc = s.get(Escalation, esc_id)
        assert esc.status == "resolved" and esc.resolved_by == lead
        snippet = s.get(Snippet, sid)
        assert (snippet.status if snippet else None) == status
        with pytest.raises(services.NotFound):
            escalation.resolve(s, dep, lead, esc_id, action)  # handled once
    assert _actions(dep, "escalation.resolved")


def test_personal_data_is_bleeped_before_anyone_else_hears_it(pool):
    sid = pool.snippet(pool.recording(pool.customer()), graders=3, seconds=2.0)
    dep = pool.deployment
    alice, bob, carol = pool.user(), pool.user(), pool.user()
    a = _lease(pool, alice)
    b = _lease(pool, bob)
    with dep.db.session() as s:
        before = s.get(Snippet, sid)
        old_blob = before.audio_blob_id
        original, _ = decode_wav(dep.vault.get_blob(s, before.customer_id, old_blob))
    with dep.db.session() as s, pytest.raises(services.InvalidGrade):
        escalation.flag(s, dep, alice, a, "personal_data", span=(1.5, 9.0))  # outside the snippet
    with dep.db.session() as s:
        result = escalation.flag(s, dep, alice, a, "personal_data", span=(0.5, 1.0))
    assert result.outcome == "redacted" and result.revoked == 1
    with dep.db.session() as s:
        snippet = s.get(Snippet, sid)
        assert (
            snippet.status == "queued" and snippet.audio_blob_id != old_blob and "OTHER" in snippet.pii_types
        )
        assert services.task_state(s, bob, b) == "gone"  # bob's lease on the unredacted audio ended
        new, _ = decode_wav(dep.vault.get_blob(s, snippet.customer_id, snippet.audio_blob_id))
        esc = s.get(Escalation, result.escalation_id)
        assert esc.resolution == "redacted" and esc.span_start_s == 0.5
    with pytest.raises(Exception):  # noqa: B017 - the unredacted blob is gone
        with dep.db.session() as s:
            dep.vault.get_blob(s, snippet.customer_id, old_blob)
    inside = slice(int(0.7 * 16000), int(0.8 * 16000))
    outside = slice(int(1.5 * 16000), int(1.6 * 16000))
    assert not np.allclose(new[inside], original[inside], atol=0.01)
    assert np.allclose(new[outside], original[outside], atol=1e-3)
    # carol is the next to hear it: she gets the bleeped audio
    c = _lease(pool, carol, fetch=False)
    with dep.db.session() as s:
        assert s.get(Assignment, c).snippet_id == sid
        heard, _ = decode_wav(services.task_audio(s, dep, carol, c))
    assert np.allclose(heard, new, atol=1e-4)


def test_accidental_needs_a_second_grader(pool):
    sid = pool.fill(1, graders=1)[0]
    dep = pool.deployment
    alice, bob = pool.user(), pool.user()
    a = _lease(pool, alice)
    with dep.db.session() as s:
        assert escalation.flag(s, dep, alice, a, "accidental").outcome == "awaiting_confirmation"
    with dep.db.session() as s:
        assert s.get(Snippet, sid).status == "queued"
    b = _lease(pool, bob)  # the slot went back to the pool: bob gets it
    with dep.db.session() as s:
        assert s.get(Assignment, b).snippet_id == sid
        assert escalation.flag(s, dep, bob, b, "accidental").outcome == "deleted"
    with dep.db.session() as s:
        assert s.get(Snippet, sid) is None
        esc = s.scalars(select(Escalation)).one()
        assert esc.resolution == "confirmed_deleted" and esc.resolved_by == bob


@pytest.mark.parametrize("action,kept", [("confirm", False), ("reject", True)])
def test_lead_confirms_or_rejects_accidental(pool, action, kept):
    sid = pool.fill(1, graders=1)[0]
    dep = pool.deployment
    alice, lead = pool.user(), pool.user("lead")
    a = _lease(pool, alice)
    with dep.db.session() as s:
        esc_id = escalation.flag(s, dep, alice, a, "accidental").escalation_id
    with dep.db.session() as s:
        escalation.resolve(s, dep, lead, esc_id, action)
    with dep.db.session() as s:
        assert (s.get(Snippet, sid) is not None) is kept


def test_skip_with_reason(pool):
    sid = pool.fill(1, graders=1)[0]
    dep = pool.deployment
    alice, bob = pool.user(), pool.user()
    a = _lease(pool, alice, fetch=False)
    with dep.db.session() as s, pytest.raises(services.InvalidGrade):
        escalation.skip(s, alice, a, "bored")
    with dep.db.session() as s:
        escalation.skip(s, alice, a, "know_speaker")
    with dep.db.session() as s:
        assert s.get(Assignment, a).skip_reason == "know_speaker"
        assert services.next_assignment(s, dep, alice) is None  # never back to the skipper
    with dep.db.session() as s:
        assert services.next_assignment(s, dep, bob).snippet_id == sid
    with dep.db.session() as s, pytest.raises(services.NotFound):
        escalation.skip(s, alice, a, "other")  # replay of a finished lease


def test_personal_data_masked_in_the_transcript_too(pool):
    from earshot.review.text import only_masks_added

    assert only_masks_added("call me on five five five", "call me on [OTHER]")
    assert only_masks_added("my name is anna smith ok", "my name is [NAME] ok")
    assert not only_masks_added("call me on five", "call me on five")  # nothing masked
    assert not only_masks_added("call me on five", "call you on [OTHER]")  # another word changed
    assert not only_masks_added("call me on five", "call me on")  # deleted, not masked
    assert not only_masks_added("call me", "call me [OTHER]")  # nothing replaced

    sid = pool.snippet(
        pool.recording(pool.customer()), text="my number is five five five", graders=2, seconds=2.0
    )
    dep = pool.deployment
    alice, bob = pool.user(), pool.user()
    a = _lease(pool, alice)
    with dep.db.session() as s, pytest.raises(services.InvalidGrade):
        escalation.flag(
            s,
            dep,
            alice,
            a,
            "personal_data",
            span=(0.5, 1.5),
            masked_transcript="my number is [OTHER] call me maybe",
        )
    with dep.db.session() as s:
        escalation.flag(
            s, dep, alice, a, "personal_data", span=(0.5, 1.5), masked_transcript="my number is [OTHER]"
        )
    b = _lease(pool, bob, fetch=False)
    with dep.db.session() as s:
        assert s.get(Assignment, b).snippet_id == sid
        assert services.task_view(s, dep, bob, b).transcript == "my number is [OTHER]"


def test_lead_audio_is_prepared_before_the_audit_append(pool, monkeypatch):
    """The lead's delivery is watermarked before the audit record locks the log's head."""
    from earshot.audit import services as audit_services

    pool.fill(1)
    dep = pool.deployment
    alice, lead = pool.user(), pool.user("lead")
    a = _lease(pool, alice)
    with dep.db.session() as s:
        esc_id = escalation.flag(s, dep, alice, a, "sensitive").escalation_id
    order: list[str] = []
    real_record = audit_services.record

    def record(session, **kwargs):
        order.append(kwargs["action"])
        return real_record(session, **kwargs)

    def prepare(snippet, wav):
        order.append("prepare")
        return b"marked:" + wav

    monkeypatch.setattr(audit_services, "record", record)
    with dep.db.session() as s:
        audio = escalation.escalation_audio(s, dep, lead, esc_id, prepare=prepare)
    assert audio.startswith(b"marked:RIFF")
    assert order == ["prepare", "audio.delivered"]
