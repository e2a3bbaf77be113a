"""Customers (pseudonymous) and their consent history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from earshot.database import Base, UTCDateTime, new_id, utcnow


class Customer(Base):
    """A customer of the voice product, known here only by a random pseudonym.

    `lookup_hash` is an HMAC of the product's customer id: it lets intake find the pseudonym
    without storing the real id. Deleting the row deletes the link (erasure).
    """

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    lookup_hash: Mapped[str] = mapped_column(String(64), unique=True)
    consented: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_version: Mapped[str | None] = mapped_column(String(32))
    consent_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsentEvent(Base):
    """Every grant or withdrawal, with the version of the text the customer agreed to."""

    __tablename__ = "consent_events"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))  # grant | withdraw
    text_version: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # api | cli
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ErasedSnippet(Base):
    """Tombstone of an erased snippet: downstream datasets drop rows with these (random) ids."""

    __tablename__ = "erased_snippets"

    snippet_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
