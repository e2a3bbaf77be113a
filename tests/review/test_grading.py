"""Grading, played-to-end enforcement, replay, gold scoring, consolidation and export."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select

from earshot.review import consolidation, services
from earshot.review.models import Consolidation, Grade, Snippet


def test_grade_refused_before_audio_and_before_it_could_be_heard(pool):
    pool.fill(1, graders=1)
    dep, reviewer = pool.deployment, pool.user()
    with dep.db.session() as s:
        aid = services.next_assignment(s, dep, reviewer).id
    with dep.db.session() as s, pytest.raises(services.NotPlayed):
        services.submit_grade(s, dep, reviewer, aid, transcript="x", accuracy=3)
    with dep.db.session() as s, pytest.raises(services.NotPlayed):
        services.mark_played(s, dep, reviewer, aid)  # audio never fetched
    with dep.db.session() as s:
        services.task_audio(s, dep, reviewer, aid)
    pool2 = pool.snippet(pool.recording(pool.customer()), seconds=8.0)  # noqa: F841 - another snippet
    # one-second snippet: heard at 2x in 0.5 s; the slack makes this immediate; so use a long snippet
    long_reviewer = pool.user()
    with dep.db.session() as s:
        long_aid = services.next_assignment(s, dep, long_reviewer).id
    with dep.db.session() as s:
        services.task_audio(s, dep, long_reviewer, long_aid)
    with dep.db.session() as s, pytest.raises(services.NotPlayed):
        services.mark_played(s, dep, long_reviewer, long_aid)  # 8 s cannot be heard in no time
    with dep.db.session() as s, pytest.raises(services.NotPlayed):
        services.submit_grade(s, dep, long_reviewer, long_aid, transcript="x", accuracy=3)


def test_grade_once_and_replay_refused(pool, lease_and_play):
    pool.fill(1, graders=2)
    dep, reviewer = pool.deployment, pool.user()
    aid = lease_and_play(pool, reviewer)
    with dep.db.session() as s:
        services.submit_grade(
            s, dep, reviewer, aid, transcript="turn on the lights", accuracy=4, intent_correct=True
        )
    with dep.db.session() as s, pytest.raises(services.NotFound):
        services.submit_grade(s, dep, reviewer, aid, transcript="again", accuracy=1)
    with dep.db.session() as s:
        assert len(s.scalars(select(Grade)).all()) == 1
        # and the finished snippet is not served to them again
        assert services.next_assignment(s, dep, reviewer) is None


def test_invalid_grades(pool, lease_and_play):
    pool.fill(1)
    dep, reviewer = pool.deployment, pool.user()
    aid = lease_and_play(pool, reviewer)
    for kwargs in (
        dict(transcript="x", accuracy=0),
        dict(transcript="x", accuracy=6),
        dict(transcript="", accuracy=3),
        dict(transcript="x" * 2001, accuracy=3),
        dict(transcript="x", accuracy=3, flags=["sensitive"]),
    ):
        with dep.db.session() as s, pytest.raises(services.InvalidGrade):
            services.submit_grade(s, dep, reviewer, aid, **kwargs)
    with dep.db.session() as s:  # an empty transcript is fine when marked unintelligible
        services.submit_grade(s, dep, reviewer, aid, transcript="", accuracy=1, flags=["unintelligible"])


def _grade(pool, lease_and_play, text, accuracy, intent=True):
    reviewer = pool.user()
    aid = lease_and_play(pool, reviewer)
    with pool.deployment.db.session() as s:
        services.submit_grade(
            s, pool.deployment, reviewer, aid, transcript=text, accuracy=accuracy, intent_correct=intent
        )
    return reviewer


def test_consolidation_agreeing_graders(pool, lease_and_play):
    sid = pool.fill(1, graders=3)[0]
    _grade(pool, lease_and_play, "Turn on the kitchen lights.", 4)
    _grade(pool, lease_and_play, "turn on the kitchen light", 4)
    _grade(pool, lease_and_play, "turn on the kitchen lights", 5)
    with pool.deployment.db.session() as s:
        snippet = s.get(Snippet, sid)
        assert snippet.status == "graded"
        row = s.get(Consolidation, sid)
        assert row.status == "auto" and row.ties == 0 and row.graders == 3
        assert (
            consolidation.consolidated_text(s, pool.deployment, snippet, row).lower().rstrip(".")
            == "turn on the kitchen lights"
        )
        assert 0 < row.mean_pairwise_wer < 0.25 and row.grade_agreement == 1.0 and row.intent_agreement == 1.0
        out = io.StringIO()
        assert services.export_jsonl(s, pool.deployment, out) == 1
        line = json.loads(out.getvalue())
        assert line["consolidated"]["status"] == "auto" and len(line["grades"]) == 3
        assert "customer_id" not in line and "recording_id" not in line


def test_disagreement_goes_to_lead_and_is_adjudicated(pool, lease_and_play):
    sid = pool.fill(1, graders=2)[0]
    _grade(pool, lease_and_play, "turn on the kitchen lights", 5)
    _grade(pool, lease_and_play, "turn off the kitchen fights", 1)
    lead_id = pool.user("lead")
    dep = pool.deployment
    with dep.db.session() as s:
        row = s.get(Consolidation, sid)
        assert row.status == "adjudication" and row.ties == 2 and "grades" in row.reason
        assert [c.snippet_id for c in consolidation.adjudication_queue(s)] == [sid]
        view = consolidation.adjudication_view(s, dep, lead_id, sid)
        assert {g["transcript"] for g in view.graders} == {
            "turn on the kitchen lights",
            "turn off the kitchen fights",
        }
        consolidation.adjudicate(s, dep, lead_id, sid, "turn on the kitchen lights")
    with dep.db.session() as s:
        row = s.get(Consolidation, sid)
        assert row.status == "adjudicated" and row.adjudicated_by == lead_id
        assert consolidation.adjudication_queue(s) == []


def test_gold_snippets_score_reviewers(pool, lease_and_play):
    from earshot.review import lead
    from earshot.review.policy import ReviewPolicy, set_policy

    dep = pool.deployment
    gold_id = pool.fill(1)[0]
    with dep.db.session() as s:
        services.make_gold(s, dep, s.get(Snippet, gold_id), "turn on the kitchen lights", intent_correct=True)
    set_policy(dep, ReviewPolicy(gold_rate=1.0))
    good = _grade(pool, lease_and_play, "turn on the kitchen lights", 5, intent=True)
    bad = _grade(pool, lease_and_play, "turn of the chicken likes", 5, intent=True)
    with dep.db.session() as s:
        snippet = s.get(Snippet, gold_id)
        assert snippet.status == "gold" and snippet.grades_done == 2  # gold never closes
        figures = {f.reviewer_id: f for f in lead.reviewer_figures(s, ReviewPolicy())}
        assert figures[good].gold_accuracy == 1.0 and figures[bad].gold_accuracy == 0.0
        out = io.StringIO()
        assert services.export_jsonl(s, dep, out) == 0  # gold is never exported
        assert s.get(Consolidation, gold_id) is None
