"""Snippets (the unit of review), their assignments to reviewers, and the grades given."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String
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
    # queued -> graded | escalated | deleted
    graders_needed: Mapped[int] = mapped_column(Integer, default=1)
    grades_done: Mapped[int] = mapped_column(Integer, default=0)
    in_flight: Mapped[int] = mapped_column(Integer, default=0)  # active leases
    rand: Mapped[float] = mapped_column(Float)  # random order of the queue
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Assignment(Base):
    """A lease of one snippet to one reviewer; expires and returns the snippet to the pool."""

    __tablename__ = "assignments"
    __table_args__ = (Index("ix_assignments_reviewer_status", "reviewer_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    snippet_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("snippets.id", ondelete="CASCADE"), index=True
    )
    reviewer_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id"), index=True)
    recording_id: Mapped[str] = mapped_column(String(32), index=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    # active -> completed | expired | skipped
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Grade(Base):
    """A reviewer's corrected transcript (encrypted) and accuracy grade for a snippet."""

    __tablename__ = "grades"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    snippet_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("snippets.id", ondelete="CASCADE"), index=True
    )
    assignment_id: Mapped[str] = mapped_column(String(32), ForeignKey("assignments.id"))
    reviewer_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id"), index=True)
    transcript_enc: Mapped[bytes] = mapped_column(LargeBinary)
    accuracy: Mapped[int] = mapped_column(Integer)  # 1..5
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
