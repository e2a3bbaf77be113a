"""Voice products (service tokens), received recordings and refusal counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from earshot.database import Base, UTCDateTime, new_id, utcnow


class Product(Base):
    """A voice product allowed to submit recordings; its token is stored only as a SHA-256 hash."""

    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    graders_per_snippet: Mapped[int] = mapped_column(Integer, default=2)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Recording(Base):
    """One accepted recording. Its audio lives only encrypted, and only until it is processed."""

    __tablename__ = "recordings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[str] = mapped_column(String(32), ForeignKey("products.id"), index=True)
    locale: Mapped[str] = mapped_column(String(16), default="en-US")
    captured_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_s: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    # pending -> processed | no_speech | failed
    raw_blob_id: Mapped[str | None] = mapped_column(String(32))  # 16 kHz PCM, encrypted
    hypothesis_enc: Mapped[bytes | None] = mapped_column(LargeBinary)  # product's own transcript


class IntakeCounter(Base):
    """What intake did per product and day; refused recordings leave only a count here."""

    __tablename__ = "intake_counters"
    __table_args__ = (UniqueConstraint("day", "product_id", "outcome"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, UTC
    product_id: Mapped[str] = mapped_column(String(32), ForeignKey("products.id"))
    outcome: Mapped[str] = mapped_column(String(24))  # accepted | no_consent | not_sampled | capped
    count: Mapped[int] = mapped_column(Integer, default=0)


class CustomerDailyCount(Base):
    """Accepted recordings per customer and day, for the per-customer daily cap."""

    __tablename__ = "customer_daily_counts"

    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
