"""Reviewer flags that take a snippet out of normal review, and how leads handle them.

Handling procedure (shown to leads on the escalation page, and enforced here):

- **Sensitive content** (`sensitive`): the snippet leaves every queue at once — all active leases on
  it, other reviewers' included, are revoked in the same transaction — and waits in the lead-only
  queue. A lead listens if needed and either *deletes* it (audio, transcript and grades destroyed) or
  *keeps it for the safety team* (status `safety_hold`, never served to reviewers again). Either
  decision is recorded in the escalation row and in the audit log.
- **Personal data not removed** (`personal_data`): the reviewer marks the time span. The snippet is
  quarantined (leases revoked), its stored audio is decrypted, the span (plus a margin) is bleeped with
  `redact_audio`, re-encrypted, and only then does it go back to the queue — in the same transaction, so
  nobody else can be served the old audio. If redaction fails, it stays quarantined for a lead.
- **Accidental activation** (`accidental`): the snippet goes to another grader; it is deleted when a
  second grader also flags it, or when a lead confirms. A lead can also reject the flag.
- **Unintelligible** / **other language**: marks on a grade (the transcript may be empty); no escalation.
- **Skip** with a reason: the lease ends, the slot returns to the pool (not to this reviewer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.audit import services as audit
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.pipeline.redact import redact_audio
from earshot.pipeline.types import SAMPLE_RATE, PiiSpan
from earshot.review.assignment import release_slot
from earshot.review.models import Assignment, Escalation, Snippet
from earshot.review.store import (
    InvalidGrade,
    NotFound,
    after_commit,
    claim,
    lock_snippet,
    owned_active,
    remove_snippet,
    revoke_leases,
)
from earshot.review.text import only_masks_added
from earshot.review.wav import decode_wav, encode_wav

SENSITIVE = "sensitive"
PERSONAL_DATA = "personal_data"
ACCIDENTAL = "accidental"
ESCALATING_FLAGS = (SENSITIVE, PERSONAL_DATA, ACCIDENTAL)
GRADE_FLAGS = ("unintelligible", "other_language")
SKIP_REASONS = {
    "cannot_hear": "Audio too poor to work on",
    "know_speaker": "I may know the speaker",
    "technical": "Technical problem (audio will not play)",
    "not_qualified": "Language or domain I cannot judge",
    "other": "Other",
}
# What a lead may do with an open escalation of each kind.
LEAD_ACTIONS = {
    SENSITIVE: ("delete", "keep_for_safety"),
    PERSONAL_DATA: ("delete", "redact"),
    ACCIDENTAL: ("confirm", "reject"),
}
SAFETY_HOLD = "safety_hold"
QUARANTINED = "quarantined"
ESCALATED = "escalated"


@dataclass(frozen=True)
class FlagResult:
    """What a flag did: the escalation (if any) and the snippet's fate."""

    escalation_id: str | None
    outcome: str  # escalated | redacted | quarantined | awaiting_confirmation | deleted
    revoked: int = 0


def _audit_flag(
    session: Session, reviewer_id: str, snippet_id: str, ip: str | None, **details: object
) -> None:
    audit.record(
        session,
        actor=f"user:{reviewer_id}",
        action="snippet.flagged",
        target=snippet_id,
        ip=ip,
        details=details,
    )


def skip(
    session: Session, reviewer_id: str, assignment_id: str, reason: str, *, ip: str | None = None
) -> None:
    """End the lease without a grade; the slot goes back to the pool for someone else."""
    if reason not in SKIP_REASONS:
        raise InvalidGrade(f"skip reason must be one of {', '.join(SKIP_REASONS)}")
    assignment = owned_active(session, reviewer_id, assignment_id)
    lock_snippet(session, assignment.snippet_id)  # before the lease (lock order: store.py)
    claim(session, reviewer_id, assignment_id, "skipped", skip_reason=reason)
    release_slot(session, assignment.snippet_id)
    audit.record(
        session,
        actor=f"user:{reviewer_id}",
        action="task.skipped",
        target=assignment.snippet_id,
        ip=ip,
        details={"assignment": assignment_id, "reason": reason},
    )


def flag(
    session: Session,
    deployment: Deployment,
    reviewer_id: str,
    assignment_id: str,
    kind: str,
    *,
    span: tuple[float, float] | None = None,
    masked_transcript: str | None = None,
    ip: str | None = None,
) -> FlagResult:
    """A reviewer's escalating flag on their current snippet (after its audio was fetched).

    With `personal_data`, `masked_transcript` may also mask the same data in the machine transcript:
    accepted only if it is the transcript with runs of words replaced by mask tokens such as [OTHER].
    """
    if kind not in ESCALATING_FLAGS:
        raise InvalidGrade(f"flag must be one of {', '.join(ESCALATING_FLAGS)}")
    assignment = owned_active(session, reviewer_id, assignment_id)
    if assignment.audio_first_at is None:
        raise InvalidGrade("listen to the snippet before flagging it")
    # Locked before any lease row (store.py): a second flag, a grade or a skip on this snippet waits
    # for our commit, and a reviewer picking it skips it (SKIP LOCKED) until then.
    snippet = lock_snippet(session, assignment.snippet_id)
    if snippet is None:
        raise NotFound("no such task")
    if kind == PERSONAL_DATA:
        if span is None:
            raise InvalidGrade("mark where the personal data is (start and end, in seconds)")
        start, end = float(span[0]), float(span[1])
        if not (0.0 <= start < end <= snippet.duration_s + 0.5):
            raise InvalidGrade("the marked span must lie within the snippet")
        span = (start, end)
        if masked_transcript is not None:
            current = deployment.vault.open_text(
                session, snippet.customer_id, f"snippet:{snippet.id}:text", snippet.transcript_enc
            )
            if masked_transcript.strip() == current.strip():
                masked_transcript = None
            elif not only_masks_added(current, masked_transcript):
                raise InvalidGrade(
                    "to mask the transcript, only replace the personal data with [OTHER]; change nothing else"
                )
    claim(session, reviewer_id, assignment_id, "flagged")
    if kind == SENSITIVE:
        return _sensitive(session, reviewer_id, assignment, snippet, ip)
    if kind == PERSONAL_DATA:
        assert span is not None
        return _personal_data(
            session, deployment, reviewer_id, assignment, snippet, span, masked_transcript, ip
        )
    return _accidental(session, deployment, reviewer_id, assignment, snippet, ip)


def _sensitive(
    session: Session, reviewer_id: str, assignment: Assignment, snippet: Snippet, ip: str | None
) -> FlagResult:
    # The snippet is locked: a reviewer who picked it before us has committed their lease (the revoke
    # sees it), and no new one can start (the pick skips locked rows; after our commit it is not queued).
    revoked = revoke_leases(session, assignment.snippet_id)
    snippet.status = ESCALATED
    snippet.in_flight = 0
    esc = Escalation(
        snippet_id=snippet.id, kind=SENSITIVE, raised_by=reviewer_id, assignment_id=assignment.id
    )
    session.add(esc)
    session.flush()
    _audit_flag(
        session,
        reviewer_id,
        snippet.id,
        ip,
        kind=SENSITIVE,
        assignment=assignment.id,
        escalation=esc.id,
        revoked=revoked,
    )
    return FlagResult(esc.id, "escalated", revoked)


def redacted_audio(
    session: Session, deployment: Deployment, snippet: Snippet, start_s: float, end_s: float
) -> bytes:
    """The snippet's stored audio with a span (plus margin) bleeped, as WAV bytes (nothing stored yet)."""
    if snippet.audio_blob_id is None:
        raise NotFound("snippet has no audio")
    audio, rate = decode_wav(deployment.vault.get_blob(session, snippet.customer_id, snippet.audio_blob_id))
    return encode_wav(redact_audio(audio, [PiiSpan("OTHER", start_s, end_s)], sr=rate or SAMPLE_RATE), rate)


def store_redacted(session: Session, deployment: Deployment, snippet: Snippet, wav: bytes) -> None:
    """Replace the snippet's audio by `wav` (a new blob); the old blob is deleted once this commits."""
    vault = deployment.vault
    old_blob = snippet.audio_blob_id
    snippet.audio_blob_id = vault.put_blob(session, snippet.customer_id, wav)
    types = {t for t in snippet.pii_types.split(",") if t} | {"OTHER"}
    snippet.pii_types = ",".join(sorted(types))
    snippet.redactions = (snippet.redactions or 0) + 1
    if old_blob:
        after_commit(session, lambda: vault.delete_blob(old_blob))


def _personal_data(
    session: Session,
    deployment: Deployment,
    reviewer_id: str,
    assignment: Assignment,
    snippet: Snippet,
    span: tuple[float, float],
    masked_transcript: str | None,
    ip: str | None,
) -> FlagResult:
    revoked = revoke_leases(session, assignment.snippet_id)  # the snippet is locked (see _sensitive)
    back_to = snippet.status if snippet.status in ("queued", "gold") else "queued"
    snippet.status = QUARANTINED
    snippet.in_flight = 0
    esc = Escalation(
        snippet_id=snippet.id,
        kind=PERSONAL_DATA,
        raised_by=reviewer_id,
        assignment_id=assignment.id,
        span_start_s=span[0],
        span_end_s=span[1],
    )
    session.add(esc)
    session.flush()
    try:
        wav = redacted_audio(session, deployment, snippet, *span)
    except Exception:  # noqa: BLE001 - any failure leaves the snippet quarantined for a lead
        wav = None
    if masked_transcript is not None:
        snippet.transcript_enc = deployment.vault.seal_text(
            session, snippet.customer_id, f"snippet:{snippet.id}:text", masked_transcript.strip()
        )
    outcome = "quarantined"
    if wav is not None:
        store_redacted(session, deployment, snippet, wav)
        snippet.status = back_to
        esc.status, esc.resolution = "resolved", "redacted"
        esc.resolved_at, esc.resolved_by = utcnow(), "system"
        outcome = "redacted"
    session.flush()
    _audit_flag(
        session,
        reviewer_id,
        snippet.id,
        ip,
        kind=PERSONAL_DATA,
        assignment=assignment.id,
        escalation=esc.id,
        revoked=revoked,
        outcome=outcome,
        text_masked=masked_transcript is not None,
        span_s=[round(span[0], 2), round(span[1], 2)],
    )
    return FlagResult(esc.id, outcome, revoked)


def _accidental(
    session: Session,
    deployment: Deployment,
    reviewer_id: str,
    assignment: Assignment,
    snippet: Snippet,
    ip: str | None,
) -> FlagResult:
    open_esc = session.scalar(
        select(Escalation).where(
            Escalation.snippet_id == assignment.snippet_id,
            Escalation.kind == ACCIDENTAL,
            Escalation.status == "open",
        )
    )
    if open_esc is not None and open_esc.raised_by != reviewer_id:
        # A second grader confirms: delete (the snippet is locked, so two confirmations queue).
        revoked = revoke_leases(session, assignment.snippet_id)
        open_esc.confirmations += 1
        open_esc.status, open_esc.resolution = "resolved", "confirmed_deleted"
        open_esc.resolved_at, open_esc.resolved_by = utcnow(), reviewer_id
        remove_snippet(session, deployment, snippet)
        session.flush()
        _audit_flag(
            session,
            reviewer_id,
            assignment.snippet_id,
            ip,
            kind=ACCIDENTAL,
            assignment=assignment.id,
            escalation=open_esc.id,
            outcome="deleted",
            revoked=revoked,
        )
        return FlagResult(open_esc.id, "deleted", revoked)
    release_slot(session, assignment.snippet_id)
    esc = Escalation(
        snippet_id=assignment.snippet_id,
        kind=ACCIDENTAL,
        raised_by=reviewer_id,
        assignment_id=assignment.id,
        confirmations=1,
    )
    session.add(esc)
    session.flush()
    _audit_flag(
        session,
        reviewer_id,
        assignment.snippet_id,
        ip,
        kind=ACCIDENTAL,
        assignment=assignment.id,
        escalation=esc.id,
        outcome="awaiting_confirmation",
    )
    return FlagResult(esc.id, "awaiting_confirmation")


# -- the lead's side ------------------------------------------------------------------------------
def open_escalations(session: Session, kind: str | None = None) -> list[Escalation]:
    """The lead-only queue: open escalations, oldest first."""
    query = select(Escalation).where(Escalation.status == "open").order_by(Escalation.created_at)
    if kind:
        query = query.where(Escalation.kind == kind)
    return list(session.scalars(query))


def get_open(session: Session, escalation_id: str) -> Escalation:
    esc = session.get(Escalation, escalation_id)
    if esc is None or esc.status != "open":
        raise NotFound("no such open escalation")
    return esc


def escalation_audio(
    session: Session,
    deployment: Deployment,
    lead_id: str,
    escalation_id: str,
    *,
    ip: str | None = None,
    prepare: Callable[[Snippet, bytes], bytes] | None = None,
) -> bytes:
    """A lead listens to an escalated snippet (audited).

    `prepare` (e.g. recording the delivery and watermarking it) runs on the decrypted audio before the
    audit append, which locks the log's head until commit: nothing slow may follow it.
    """
    esc = get_open(session, escalation_id)
    snippet = session.get(Snippet, esc.snippet_id)
    if snippet is None or snippet.audio_blob_id is None:
        raise NotFound("no such open escalation")
    audio = deployment.vault.get_blob(session, snippet.customer_id, snippet.audio_blob_id)
    if prepare is not None:
        audio = prepare(snippet, audio)
    audit.record(
        session,
        actor=f"user:{lead_id}",
        action="audio.delivered",
        target=snippet.id,
        ip=ip,
        details={"escalation": esc.id, "duration_s": snippet.duration_s},
    )
    return audio


def escalation_transcript(session: Session, deployment: Deployment, escalation: Escalation) -> str | None:
    """The masked machine transcript of an escalated snippet (for the lead)."""
    snippet = session.get(Snippet, escalation.snippet_id)
    if snippet is None:
        return None
    return deployment.vault.open_text(
        session, snippet.customer_id, f"snippet:{snippet.id}:text", snippet.transcript_enc
    )


def resolve(
    session: Session,
    deployment: Deployment,
    lead_id: str,
    escalation_id: str,
    action: str,
    *,
    ip: str | None = None,
) -> Escalation:
    """A lead's decision on an open escalation (see the module's procedure)."""
    esc = get_open(session, escalation_id)
    if action not in LEAD_ACTIONS.get(esc.kind, ()):
        raise InvalidGrade(f"for {esc.kind} the lead may: {', '.join(LEAD_ACTIONS.get(esc.kind, ()))}")
    snippet = lock_snippet(session, esc.snippet_id)  # before its leases (lock order: store.py)
    revoked = revoke_leases(session, esc.snippet_id) if action in ("delete", "confirm") else 0
    resolution = action
    if action in ("delete", "confirm"):
        if snippet is not None:
            remove_snippet(session, deployment, snippet)
        resolution = "deleted" if action == "delete" else "confirmed_deleted"
    elif action == "keep_for_safety":
        if snippet is not None:
            snippet.status = SAFETY_HOLD
            snippet.in_flight = 0
        resolution = "kept_for_safety"
    elif action == "redact":
        if snippet is None or esc.span_start_s is None or esc.span_end_s is None:
            raise NotFound("nothing to redact")
        store_redacted(
            session,
            deployment,
            snippet,
            redacted_audio(session, deployment, snippet, esc.span_start_s, esc.span_end_s),
        )
        snippet.status = "queued"
        resolution = "redacted"
    elif action == "reject":
        resolution = "rejected"
    esc.status = "resolved"
    esc.resolution = resolution
    esc.resolved_at = utcnow()
    esc.resolved_by = lead_id
    session.flush()
    audit.record(
        session,
        actor=f"user:{lead_id}",
        action="escalation.resolved",
        target=esc.snippet_id,
        ip=ip,
        details={"escalation": esc.id, "kind": esc.kind, "resolution": resolution, "revoked": revoked},
    )
    return esc
