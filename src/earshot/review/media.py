"""Single-use, short-lived media URLs: each play of a snippet is a watermarked delivery.

Why: a stable audio URL can be copied, shared or replayed outside the session; and a leaked
recording must name who heard it. So every play goes through two steps:

1. `issue_media_url` (the reviewer holds the lease): creates a `Delivery` with a random token —
   stored only as its SHA-256 — bound to the web session, the reviewer and the assignment, valid
   for `TOKEN_TTL`, and a random watermark payload; returns the URL path.
2. `redeem` (GET on that URL): claims the token atomically (a second use, an expired token, another
   session or another reviewer all look like "not found"), decrypts the snippet through the review
   service (which checks the lease again and writes the audit record) and returns WAV bytes with
   the delivery's inaudible watermark. The audio exists only in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
from datetime import datetime, timedelta

import numpy as np
import soundfile as sf
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from earshot.audit import services as audit
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.pipeline.types import SAMPLE_RATE
from earshot.review import watermark
from earshot.review.delivery_models import Delivery
from earshot.review.models import Assignment

TOKEN_TTL = timedelta(seconds=60)
MEDIA_PREFIX = "/api/v1/media/"
MAX_DELIVERIES_PER_ASSIGNMENT = 20  # plays (URL requests) of one snippet within one lease
WATERMARK_SECRET = "review-watermark"  # noqa: S105 - the name of a derived secret, not one
MARK_BITS = 47  # positive in a signed 64-bit column on every database
_DELIVERIES = Delivery.__table__


class MediaNotFound(LookupError):
    """No audio under that token for this caller (unknown, used, expired, other session/reviewer)."""


class PlayLimit(Exception):
    """The reviewer asked for this snippet's audio more often than `MAX_DELIVERIES_PER_ASSIGNMENT`."""


def watermark_key(deployment: Deployment) -> bytes:
    """The deployment's secret watermark key (derived by the key provider, never stored)."""
    return deployment.keys.secret(WATERMARK_SECRET)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _active_lease(session: Session, reviewer_id: str, assignment_id: str, now: datetime) -> Assignment:
    assignment = session.get(Assignment, assignment_id)
    if (
        assignment is None
        or assignment.reviewer_id != reviewer_id
        or assignment.status != "active"
        or assignment.lease_expires_at <= now
    ):
        raise MediaNotFound("no such task")
    return assignment


def issue_media_url(
    session: Session,
    deployment: Deployment,
    principal_session_id: str,
    reviewer_id: str,
    assignment_id: str,
) -> str:
    """A fresh single-use URL path for one play of the assignment's snippet (valid TOKEN_TTL)."""
    now = utcnow()
    assignment = _active_lease(session, reviewer_id, assignment_id, now)
    issued = session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.assignment_id == assignment.id)
    )
    if (issued or 0) >= MAX_DELIVERIES_PER_ASSIGNMENT:
        raise PlayLimit("too many plays of this snippet")
    token = secrets.token_urlsafe(32)
    if session.get_bind().dialect.name == "postgresql":
        # Nothing here needs to survive a crash (an unused token, no audit record, no audio): the
        # commit need not wait for the WAL flush. Redeeming, which delivers and audits, stays durable.
        session.execute(text("SET LOCAL synchronous_commit = off"))
    session.add(
        Delivery(
            mark=secrets.randbits(MARK_BITS) or 1,
            token_hash=_sha256(token),
            session_hash=_sha256(principal_session_id),
            reviewer_id=reviewer_id,
            assignment_id=assignment.id,
            snippet_id=assignment.snippet_id,
            created_at=now,
            expires_at=now + TOKEN_TTL,
        )
    )
    session.flush()
    return MEDIA_PREFIX + token


def _refuse(
    session: Session, reviewer_id: str, reason: str, ip: str | None, target: str | None
) -> MediaNotFound:
    """Audit a refused token presented by a known reviewer (possible URL sharing) and build the error."""
    audit.record(session, actor=f"user:{reviewer_id}", action="media.refused", outcome="denied",
                 target=target, ip=ip, details={"reason": reason})
    return MediaNotFound("not found")


def _refusal(
    session: Session, token_hash: str, session_hash: str, reviewer_id: str, ip: str | None, now: datetime
) -> MediaNotFound:
    """Why a token could not be claimed: unknown (not audited), or refused and audited."""
    delivery = session.scalar(select(Delivery).where(Delivery.token_hash == token_hash))
    if delivery is None:
        return MediaNotFound("not found")  # nothing to attribute: not audited
    if delivery.reviewer_id != reviewer_id:
        return _refuse(session, reviewer_id, "other reviewer", ip, delivery.id)
    if not hmac.compare_digest(delivery.session_hash, session_hash):
        return _refuse(session, reviewer_id, "other session", ip, delivery.id)
    if delivery.expires_at <= now and delivery.used_at is None:
        return _refuse(session, reviewer_id, "expired", ip, delivery.id)
    return _refuse(session, reviewer_id, "used", ip, delivery.id)  # before, or by a concurrent request


def redeem(
    session: Session,
    deployment: Deployment,
    token: str,
    principal_session_id: str,
    reviewer_id: str,
    *,
    ip: str | None = None,
) -> bytes:
    """WAV bytes of the snippet watermarked for this delivery; the token is spent.

    Raises `MediaNotFound` for anything but the first use, within TOKEN_TTL, by the session and
    reviewer it was issued to, or when the lease ended in the meantime. Refusals are audited:
    commit the session before answering 404.
    """
    from earshot.review import services  # the review service imports the pipeline; keep it lazy

    now = utcnow()
    if not token or len(token) > 128:
        raise MediaNotFound("not found")
    token_hash, session_hash = _sha256(token), _sha256(principal_session_id)
    # The common case in one statement: claim the token if it is this reviewer's and session's,
    # unused and unexpired. Only a refusal reads the row to say why (for the audit record).
    claimed = session.execute(
        _DELIVERIES.update()
        .where(
            _DELIVERIES.c.token_hash == token_hash,
            _DELIVERIES.c.reviewer_id == reviewer_id,
            _DELIVERIES.c.session_hash == session_hash,
            _DELIVERIES.c.used_at.is_(None),
            _DELIVERIES.c.expires_at > now,
        )
        .values(used_at=now, ip=ip)
        .returning(_DELIVERIES.c.assignment_id, _DELIVERIES.c.mark)
    ).first()
    if claimed is None:
        raise _refusal(session, token_hash, session_hash, reviewer_id, ip, now)
    assignment_id, mark = claimed
    try:
        assignment, snippet, wav = services.task_audio_source(session, deployment, reviewer_id, assignment_id)
    except services.NotFound as exc:
        raise MediaNotFound("not found") from exc
    # Decrypt and watermark before the audit append: where that append locks the log's head until
    # commit (the one-step append), nothing slow may follow it.
    marked = watermarked_wav(wav, mark, watermark_key(deployment))
    services.record_delivery(session, reviewer_id, assignment, snippet, ip=ip)
    return marked


def deliver_direct(
    session: Session,
    deployment: Deployment,
    *,
    user_id: str,
    snippet_id: str,
    wav: bytes,
    principal_session_id: str,
    ip: str | None = None,
    assignment_id: str = "",
) -> bytes:
    """Record a delivery of audio the caller has already authorised (a lead hearing an escalated or
    disputed snippet, outside any lease) and return it watermarked for that delivery."""
    now = utcnow()
    mark = secrets.randbits(MARK_BITS) or 1
    session.add(
        Delivery(
            mark=mark,
            token_hash=_sha256(secrets.token_urlsafe(32)),  # no URL: nothing to redeem
            session_hash=_sha256(principal_session_id),
            reviewer_id=user_id,
            assignment_id=assignment_id,
            snippet_id=snippet_id,
            created_at=now,
            expires_at=now,
            used_at=now,
            ip=ip,
        )
    )
    session.flush()
    return watermarked_wav(wav, mark, watermark_key(deployment))


def watermarked_wav(wav: bytes, mark: int, key: bytes) -> bytes:
    """Decode the stored WAV in memory, add the delivery's mark, encode 16-bit PCM WAV."""
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1).astype(np.float32)
    if rate != SAMPLE_RATE:  # never the case for stored snippets; kept correct anyway
        from earshot.pipeline.decode import decode_audio

        mono = decode_audio(wav)
    return pcm16_wav(watermark.embed(mono, mark, key))


def pcm16_wav(audio: np.ndarray) -> bytes:
    """16-bit mono WAV bytes at SAMPLE_RATE, built in memory."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0), SAMPLE_RATE, format="WAV",
             subtype="PCM_16")
    return buf.getvalue()


def purge_unused(session: Session, now: datetime | None = None) -> int:
    """Delete deliveries whose token expired unused (they carried no audio); returns how many."""
    now = now or utcnow()
    result = session.execute(
        Delivery.__table__.delete().where(Delivery.used_at.is_(None), Delivery.expires_at <= now)
    )
    return int(result.rowcount or 0)
