"""Snippets (the unit of review), their leases to reviewers, grades, escalations and consolidations.

Snippet statuses: `queued` (in the pool, open slots for graders), `gold` (a snippet with a known answer,
mixed into the pool to score reviewers), `graded` (every grader done), `escalated` (sensitive content:
lead-only), `safety_hold` (kept for the safety team), `quarantined` (personal data reported, being
re-redacted; never served), `deleted` is never stored (rows are removed).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from earshot.database import Base, UTCDateTime, new_id, utcnow


class Snippet(Base):
    """A de-identified piece of a recording (<= 10 s). Audio and transcript are encrypted."""

    __tablename__ = "snippets"
    __table_args__ = (Index("ix_snippets_status_rand", "status", "rand"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    recording_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("recordings.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[str] = mapped_column(String(32), ForeignKey("products.id"))
    position: Mapped[int] = mapped_column(Integer)  # order within the recording (never shown)
    duration_s: Mapped[float] = mapped_column(Float)
    audio_blob_id: Mapped[str | None] = mapped_column(String(32))
    transcript_enc: Mapped[bytes] = mapped_column(LargeBinary)  # masked machine transcript
    pii_types: Mapped[str] = mapped_column(String(256), default="")  # e.g. "PHONE,NAME"
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    graders_needed: Mapped[int] = mapped_column(Integer, default=1)
    grades_done: Mapped[int] = mapped_column(Integer, default=0)
    in_flight: Mapped[int] = mapped_column(Integer, default=0)  # active leases
    rand: Mapped[float] = mapped_column(Float)  # random order of the queue
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Gold snippets: the known answer (encrypted) and, optionally, whether the machine got the intent.
    gold_transcript_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    gold_intent_correct: Mapped[bool | None] = mapped_column(Boolean)
    redactions: Mapped[int] = mapped_column(Integer, default=0)  # re-redactions after reviewer reports


class Assignment(Base):
    """A lease of one snippet to one reviewer; expires and returns the snippet to the pool.

    Status: active -> completed | skipped | flagged | expired | revoked (snippet withdrawn under the
    reviewer, e.g. after another reviewer's sensitive-content flag).
    """

    __tablename__ = "assignments"
    __table_args__ = (
        Index("ix_assignments_reviewer_status", "reviewer_id", "status"),
        Index("ix_assignments_reviewer_assigned", "reviewer_id", "assigned_at"),
        Index("ix_assignments_status_expires", "status", "lease_expires_at"),
        Index("ix_assignments_snippet_status", "snippet_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    snippet_id: Mapped[str] = mapped_column(String(32), ForeignKey("snippets.id", ondelete="CASCADE"))
    reviewer_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id"), index=True)
    recording_id: Mapped[str] = mapped_column(String(32), index=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    audio_first_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first audio delivery
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    played_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # heard to the end (checked)
    skip_reason: Mapped[str | None] = mapped_column(String(32))


class Grade(Base):
    """A reviewer's corrected transcript (encrypted), accuracy grade, intent verdict and flags."""

    __tablename__ = "grades"
    __table_args__ = (Index("ix_grades_reviewer_created", "reviewer_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    snippet_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("snippets.id", ondelete="CASCADE"), index=True
    )
    assignment_id: Mapped[str] = mapped_column(String(32), ForeignKey("assignments.id"), unique=True)
    reviewer_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id"), index=True)
    transcript_enc: Mapped[bytes] = mapped_column(LargeBinary)
    accuracy: Mapped[int] = mapped_column(Integer)  # 1..5
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    intent_correct: Mapped[bool | None] = mapped_column(Boolean)
    flags: Mapped[str] = mapped_column(String(64), default="")  # "unintelligible,other_language"
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    gold_wer: Mapped[float | None] = mapped_column(Float)  # against the known answer
    gold_pass: Mapped[bool | None] = mapped_column(Boolean)


class ReviewerExclusion(Base):
    """What one reviewer may no longer receive: a recording (forever) or a customer (until the window ends).

    One row per (reviewer, scope, key), so the eligibility check is an index lookup per candidate snippet
    instead of a NOT IN over the reviewer's whole history.
    """

    __tablename__ = "review_exclusions"

    reviewer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(1), primary_key=True)  # "r" recording | "c" customer
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewerState(Base):
    """One row per reviewer, locked while that reviewer is assigned work (serialises their requests)."""

    __tablename__ = "reviewer_states"

    reviewer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Escalation(Base):
    """A reviewer's flag that needs handling (sensitive content, personal data, accidental activation).

    Kept after the snippet is deleted (no foreign key), as the record of what was done: no content here.
    """

    __tablename__ = "escalations"
    __table_args__ = (Index("ix_escalations_status_kind", "status", "kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    snippet_id: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # sensitive | personal_data | accidental
    raised_by: Mapped[str] = mapped_column(String(32))  # user id
    assignment_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    resolution: Mapped[str | None] = mapped_column(String(24))
    # deleted | kept_for_safety | redacted | confirmed_deleted | rejected
    span_start_s: Mapped[float | None] = mapped_column(Float)
    span_end_s: Mapped[float | None] = mapped_column(Float)
    confirmations: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(32))


class Consolidation(Base):
    """The consolidated transcript of a fully graded snippet and how much its graders agreed."""

    __tablename__ = "consolidations"

    snippet_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("snippets.id", ondelete="CASCADE"), primary_key=True
    )
    transcript_enc: Mapped[bytes] = mapped_column(LargeBinary)
    graders: Mapped[int] = mapped_column(Integer)
    mean_pairwise_wer: Mapped[float] = mapped_column(Float)
    grade_agreement: Mapped[float] = mapped_column(Float)  # share of grader pairs within one point
    intent_agreement: Mapped[float | None] = mapped_column(Float)
    ties: Mapped[int] = mapped_column(Integer, default=0)  # word positions the vote could not decide
    accuracy: Mapped[float] = mapped_column(Float)  # mean accuracy grade
    status: Mapped[str] = mapped_column(String(16), index=True)  # auto | adjudication | adjudicated
    reason: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    adjudicated_by: Mapped[str | None] = mapped_column(String(32))
    adjudicated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
