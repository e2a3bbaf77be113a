"""Intake: consent first, then sampling, then validation; only accepted recordings are stored.

A refused recording is never decoded or stored; it only increments a counter.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.audit import services as audit
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.intake.models import CustomerDailyCount, IntakeCounter, Product, Recording
from earshot.pipeline.decode import AudioError, decode_audio
from earshot.pipeline.types import SAMPLE_RATE
from earshot.privacy.services import has_consent

TOKEN_PREFIX = "est_"  # noqa: S105 - a public prefix, not a secret


class UploadTooLarge(AudioError):
    code = "too_large"


@dataclass(frozen=True)
class RecordingMeta:
    customer_id: str
    locale: str = "en-US"
    hypothesis: str | None = None
    captured_at: datetime | None = None


@dataclass(frozen=True)
class IntakeResult:
    status: str  # accepted | no_consent | not_sampled | capped
    recording_id: str | None = None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_product(session: Session, name: str, *, graders_per_snippet: int = 2) -> tuple[Product, str]:
    """Register a voice product; returns it and its service token (shown once, stored hashed)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    product = Product(name=name, token_hash=_token_hash(token), graders_per_snippet=graders_per_snippet)
    session.add(product)
    session.flush()
    return product, token


def authenticate_product(session: Session, token: str) -> Product | None:
    """The active product owning `token`, compared in constant time."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = _token_hash(token)
    product = session.scalar(select(Product).where(Product.token_hash == digest))
    if product is None or not product.active or not hmac.compare_digest(product.token_hash, digest):
        return None
    return product


def _bump(session: Session, product_id: str, outcome: str) -> None:
    day = utcnow().date().isoformat()
    row = session.scalar(
        select(IntakeCounter).where(
            IntakeCounter.day == day, IntakeCounter.product_id == product_id, IntakeCounter.outcome == outcome
        )
    )
    if row is None:
        session.add(IntakeCounter(day=day, product_id=product_id, outcome=outcome, count=1))
    else:
        row.count += 1
    session.flush()


def _under_daily_cap(session: Session, customer_id: str, cap: int) -> bool:
    day = utcnow().date().isoformat()
    row = session.get(CustomerDailyCount, (customer_id, day))
    if row is None:
        row = CustomerDailyCount(customer_id=customer_id, day=day, count=0)
        session.add(row)
    if row.count >= cap:
        return False
    row.count += 1
    session.flush()
    return True


def pcm16_bytes(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def pcm16_audio(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767.0


def receive_recording(
    deployment: Deployment,
    session: Session,
    product: Product,
    meta: RecordingMeta,
    data: bytes,
    *,
    rng: random.Random | None = None,
    ip: str | None = None,
) -> IntakeResult:
    """Apply consent, sampling and the daily cap, then validate and store the recording encrypted.

    Raises `AudioError` (and leaves nothing behind) when the upload is not usable audio. The caller
    commits, then submits processing with `deployment.runner`.
    """
    settings = deployment.settings
    if len(data) > settings.max_upload_bytes:
        raise UploadTooLarge(f"upload is larger than the limit of {settings.max_upload_bytes} bytes")
    customer = has_consent(session, deployment, meta.customer_id)
    if customer is None:
        _bump(session, product.id, "no_consent")
        return IntakeResult("no_consent")
    draw = (rng or random.SystemRandom()).random()
    if draw >= settings.sample_rate:
        _bump(session, product.id, "not_sampled")
        return IntakeResult("not_sampled")
    audio = decode_audio(data, max_duration_s=settings.max_duration_s)  # raises AudioError
    if not _under_daily_cap(session, customer.id, settings.daily_cap_per_customer):
        _bump(session, product.id, "capped")
        return IntakeResult("capped")

    recording = Recording(
        customer_id=customer.id,
        product_id=product.id,
        locale=meta.locale,
        captured_at=meta.captured_at,
        duration_s=len(audio) / SAMPLE_RATE,
    )
    session.add(recording)
    session.flush()
    recording.raw_blob_id = deployment.vault.put_blob(session, customer.id, pcm16_bytes(audio))
    if meta.hypothesis:
        recording.hypothesis_enc = deployment.vault.seal_text(
            session, customer.id, f"recording:{recording.id}:hypothesis", meta.hypothesis
        )
    _bump(session, product.id, "accepted")
    audit.record(
        session,
        actor=f"product:{product.id}",
        action="intake.accepted",
        target=recording.id,
        ip=ip,
        details={"duration_s": round(recording.duration_s, 2)},
    )
    return IntakeResult("accepted", recording.id)
