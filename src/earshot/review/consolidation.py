"""When every grader of a snippet is done: the consolidated transcript and the agreement figures.

The transcript is a ROVER vote over the graders' transcripts (`rover.vote`); agreement is the mean
pairwise WER between graders, the share of grader pairs whose accuracy grades are within one point,
and the share of pairs agreeing on intent. Ties, a high pairwise WER or grades far apart send the
snippet to a lead for adjudication; the lead's transcript then replaces the vote.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.audit import services as audit
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.review import rover
from earshot.review.models import Consolidation, Grade, Snippet
from earshot.review.policy import ReviewPolicy, policy_for
from earshot.review.store import InvalidGrade, NotFound
from earshot.review.text import pairwise_wer

MAX_TRANSCRIPT_CHARS = 2000


@dataclass(frozen=True)
class Agreement:
    """Agreement between the graders of one snippet."""

    graders: int
    mean_pairwise_wer: float
    grade_agreement: float
    intent_agreement: float | None
    accuracy: float
    spread: int


def agreement(transcripts: list[str], accuracies: list[int], intents: list[bool | None]) -> Agreement:
    """Pairwise figures over the graders (a single grader agrees with themself)."""
    pairs = list(combinations(range(len(transcripts)), 2))
    if pairs:
        mean_wer = sum(pairwise_wer(transcripts[a], transcripts[b]) for a, b in pairs) / len(pairs)
        within = sum(abs(accuracies[a] - accuracies[b]) <= 1 for a, b in pairs) / len(pairs)
    else:
        mean_wer, within = 0.0, 1.0
    intent_pairs = [(a, b) for a, b in pairs if intents[a] is not None and intents[b] is not None]
    intent = (
        (sum(intents[a] == intents[b] for a, b in intent_pairs) / len(intent_pairs)) if intent_pairs else None
    )
    return Agreement(
        graders=len(transcripts),
        mean_pairwise_wer=round(mean_wer, 4),
        grade_agreement=round(within, 4),
        intent_agreement=None if intent is None else round(intent, 4),
        accuracy=round(sum(accuracies) / len(accuracies), 3) if accuracies else 0.0,
        spread=(max(accuracies) - min(accuracies)) if accuracies else 0,
    )


def _grades(session: Session, snippet_id: str) -> list[Grade]:
    return list(
        session.scalars(
            select(Grade)
            .where(Grade.snippet_id == snippet_id, Grade.is_gold.is_(False))
            .order_by(Grade.created_at, Grade.id)
        )
    )


def grade_transcripts(session: Session, deployment: Deployment, snippet: Snippet) -> list[tuple[Grade, str]]:
    """Each (non-gold) grade of the snippet with its decrypted transcript, oldest first."""
    vault = deployment.vault
    return [
        (g, vault.open_text(session, snippet.customer_id, f"grade:{g.id}:text", g.transcript_enc))
        for g in _grades(session, snippet.id)
    ]


def consolidate(
    session: Session, deployment: Deployment, snippet: Snippet, *, policy: ReviewPolicy | None = None
) -> Consolidation:
    """Vote, measure agreement, decide whether a lead must adjudicate; stored encrypted."""
    policy = policy or policy_for(deployment)
    graded = grade_transcripts(session, deployment, snippet)
    texts = [t for _, t in graded]
    result = rover.vote(texts)
    figures = agreement(texts, [g.accuracy for g, _ in graded], [g.intent_correct for g, _ in graded])
    reasons = []
    if result.ties:
        reasons.append(f"ties:{len(result.ties)}")
    if figures.mean_pairwise_wer > policy.adjudication_wer:
        reasons.append("wer")
    if figures.spread >= policy.adjudication_grade_spread:
        reasons.append("grades")
    sealed = deployment.vault.seal_text(
        session, snippet.customer_id, f"consolidated:{snippet.id}:text", result.text
    )
    values = dict(
        transcript_enc=sealed,
        graders=figures.graders,
        mean_pairwise_wer=figures.mean_pairwise_wer,
        grade_agreement=figures.grade_agreement,
        intent_agreement=figures.intent_agreement,
        accuracy=figures.accuracy,
        ties=len(result.ties),
        status="adjudication" if reasons else "auto",
        reason=",".join(reasons)[:64],
        created_at=utcnow(),
    )
    row = session.get(Consolidation, snippet.id)
    if row is None:
        row = Consolidation(snippet_id=snippet.id, **values)
        session.add(row)
    else:
        for key, value in values.items():
            setattr(row, key, value)
    session.flush()
    return row


def consolidated_text(session: Session, deployment: Deployment, snippet: Snippet, row: Consolidation) -> str:
    return deployment.vault.open_text(
        session, snippet.customer_id, f"consolidated:{snippet.id}:text", row.transcript_enc
    )


@dataclass(frozen=True)
class AdjudicationView:
    """What a lead sees to adjudicate: the machine transcript, each grader's work, the vote."""

    snippet_id: str
    machine: str
    graders: list[dict[str, object]]
    vote: str
    ties: int
    reason: str
    mean_pairwise_wer: float
    grade_agreement: float
    status: str


def adjudication_queue(session: Session) -> list[Consolidation]:
    """Consolidations waiting for a lead, oldest first."""
    return list(
        session.scalars(
            select(Consolidation)
            .where(Consolidation.status == "adjudication")
            .order_by(Consolidation.created_at)
        )
    )


def adjudication_view(
    session: Session, deployment: Deployment, lead_id: str, snippet_id: str, *, ip: str | None = None
) -> AdjudicationView:
    """The material for one adjudication (the lead reads transcripts: recorded in the audit log)."""
    row = session.get(Consolidation, snippet_id)
    snippet = session.get(Snippet, snippet_id)
    if row is None or snippet is None:
        raise NotFound("no such adjudication")
    vault = deployment.vault
    graders = [
        {
            "grade_id": g.id,
            "transcript": text,
            "accuracy": g.accuracy,
            "intent_correct": g.intent_correct,
            "flags": g.flags,
        }
        for g, text in grade_transcripts(session, deployment, snippet)
    ]
    machine = vault.open_text(
        session, snippet.customer_id, f"snippet:{snippet.id}:text", snippet.transcript_enc
    )
    audit.record(session, actor=f"user:{lead_id}", action="adjudication.viewed", target=snippet.id, ip=ip)
    return AdjudicationView(
        snippet.id,
        machine,
        graders,
        consolidated_text(session, deployment, snippet, row),
        row.ties,
        row.reason,
        row.mean_pairwise_wer,
        row.grade_agreement,
        row.status,
    )


def adjudicate(
    session: Session,
    deployment: Deployment,
    lead_id: str,
    snippet_id: str,
    transcript: str,
    *,
    ip: str | None = None,
) -> Consolidation:
    """The lead's transcript becomes the consolidated one."""
    transcript = (transcript or "").strip()
    if len(transcript) > MAX_TRANSCRIPT_CHARS:
        raise InvalidGrade(f"transcript longer than {MAX_TRANSCRIPT_CHARS} characters")
    row = session.get(Consolidation, snippet_id)
    snippet = session.get(Snippet, snippet_id)
    if row is None or snippet is None:
        raise NotFound("no such adjudication")
    row.transcript_enc = deployment.vault.seal_text(
        session, snippet.customer_id, f"consolidated:{snippet.id}:text", transcript
    )
    row.status = "adjudicated"
    row.adjudicated_by = lead_id
    row.adjudicated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=f"user:{lead_id}",
        action="adjudication.decided",
        target=snippet.id,
        ip=ip,
        details={"ties": row.ties, "reason": row.reason},
    )
    return row
