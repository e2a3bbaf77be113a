"""Deliveries: one row per play of a snippet, carrying its media token and its watermark payload.

A delivery is created when a reviewer asks to play a snippet (a single-use, short-lived media URL)
and is marked used when the audio is fetched. The `mark` is the watermark payload embedded in the
audio of that play, so `earshot trace` can name the delivery — reviewer, snippet, time — that a
leaked recording came from.

Assignment, snippet and reviewer ids are plain columns, not foreign keys: the record of who heard
what must outlive the snippet (erasure deletes snippets and, by cascade, their assignments), or a
leak found after erasure could not be traced. The ids are random and carry no customer data.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from earshot.database import Base, UTCDateTime, new_id, utcnow


class Delivery(Base):
    """One play of one snippet to one reviewer in one session."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_used_at", "used_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    mark: Mapped[int] = mapped_column(BigInteger, unique=True)  # watermark payload, random 47 bits
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the URL token
    session_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the web session's row id
    reviewer_id: Mapped[str] = mapped_column(String(32), index=True)
    assignment_id: Mapped[str] = mapped_column(String(32), index=True)
    snippet_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when the audio was sent
    ip: Mapped[str | None] = mapped_column(String(64))  # client address that fetched it
