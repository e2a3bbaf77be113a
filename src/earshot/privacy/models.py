"""Customers (pseudonymous), their consent history, erasures and the tombstones they leave."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from earshot.database import Base, UTCDateTime, new_id, utcnow


class Customer(Base):
    """A customer of the voice product, known here only by a random pseudonym.

    `lookup_hash` is an HMAC of the product's customer id: it lets intake find the pseudonym
    without storing the real id. Erasure sets it to NULL at once (the link is gone, Art. 17) and
    the row itself is deleted when the erasure is purged.
    """

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    lookup_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    consented: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_version: Mapped[str | None] = mapped_column(String(32))
    consent_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsentEvent(Base):
    """Every grant or withdrawal, with the version of the text the customer agreed to (Art. 7(1))."""

    __tablename__ = "consent_events"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))  # grant | withdraw
    text_version: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # api | cli
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Erasure(Base):
    """An erasure request: shredded at once, purged (rows and blobs removed) right after.

    The receipt id is random; the pseudonym it names is no longer linked to any product id.
    No foreign key: the receipt outlives the customer row.
    """

    __tablename__ = "erasures"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)  # the (now unlinked) pseudonym
    source: Mapped[str] = mapped_column(String(16))  # api | cli
    status: Mapped[str] = mapped_column(String(16), default="shredded", index=True)  # shredded | purged
    shredded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snippets: Mapped[int] = mapped_column(Integer, default=0)
    recordings: Mapped[int] = mapped_column(Integer, default=0)
    blobs: Mapped[int] = mapped_column(Integer, default=0)


class ErasedSnippet(Base):
    """Tombstone of a deleted snippet: downstream datasets drop rows with these (random) ids.

    `reason` is `erasure` (Art. 17: must be dropped), `retention` (maximum age reached) or
    `withdrawal` (consent withdrawn before the snippet was consolidated).
    """

    __tablename__ = "erased_snippets"

    snippet_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(16), default="erasure")
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
