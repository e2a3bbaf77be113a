"""Per-customer data keys, stored only wrapped by the key-encryption key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from earshot.database import Base, UTCDateTime, utcnow


class CustomerKey(Base):
    """Destroying this row crypto-shreds every blob and field of the customer."""

    __tablename__ = "customer_keys"

    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
