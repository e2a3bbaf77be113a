"""Single-use media URLs: one play, one watermarked delivery; anything else is "not found"."""

from __future__ import annotations

import io
from datetime import timedelta
from itertools import count

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly
from sqlalchemy import func, select, text, update

from earshot.access.models import User
from earshot.audit.models import AuditRecord
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.intake.models import Recording
from earshot.intake.services import create_product
from earshot.pipeline.decode import decode_audio
from earshot.pipeline.types import DeidSnippet
from earshot.privacy.services import set_consent
from earshot.review import media, services, watermark
from earshot.review.delivery_models import Delivery
from earshot.review.models import Assignment
from earshot.review.watermark_trace import trace_audio
from tests.conftest import espeak
from tests.review.test_watermark import mp3

SPEECH = "Could you please set a reminder to water the plants on the balcony every other evening at eight."
_emails = count()


def ensure_delivery_table(deployment: Deployment) -> None:
    """Until `earshot.review.delivery_models` is in the migration (database.MODEL_MODULES), create it here."""
    Delivery.__table__.create(deployment.db.engine, checkfirst=True)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    audio, rate = sf.read(io.BytesIO(espeak(SPEECH, speed=150)), dtype="float32")
    return resample_poly(audio, 160, rate // 100).astype(np.float32)


@pytest.fixture
def dep(deployment: Deployment) -> Deployment:
    ensure_delivery_table(deployment)
    return deployment


def reviewer(deployment: Deployment) -> str:
    with deployment.db.session() as s:
        user = User(email=f"reviewer{next(_emails)}@example.org", role="reviewer", status="active")
        s.add(user)
        s.flush()
        return user.id


def leased(deployment: Deployment, audio: np.ndarray, reviewers: int = 1) -> tuple[list[str], list[str]]:
    """A queued snippet of `audio` leased to `reviewers` reviewers: (reviewer ids, assignment ids)."""
    with deployment.db.session() as s:
        product, _ = create_product(s, f"assistant{next(_emails)}", graders_per_snippet=reviewers)
        customer = set_consent(s, deployment, f"cust-{next(_emails)}", granted=True)
        recording = Recording(
            customer_id=customer.id, product_id=product.id, duration_s=len(audio) / 16000, status="processed"
        )
        s.add(recording)
        s.flush()
        snippet = DeidSnippet(audio=audio, start_s=0.0, end_s=len(audio) / 16000, transcript="a reminder")
        services.add_snippet(s, deployment, recording, snippet, position=0, graders_needed=reviewers)
    ids, leases = [], []
    for _ in range(reviewers):
        rid = reviewer(deployment)
        with deployment.db.session() as s:
            assignment = services.next_assignment(s, deployment, rid)
            assert assignment is not None
            ids.append(rid)
            leases.append(assignment.id)
    return ids, leases


def issue(deployment: Deployment, session_id: str, rid: str, aid: str) -> str:
    with deployment.db.session() as s:
        url = media.issue_media_url(s, deployment, session_id, rid, aid)
    assert url.startswith(media.MEDIA_PREFIX)
    return url.removeprefix(media.MEDIA_PREFIX)


def redeem(deployment: Deployment, token: str, session_id: str, rid: str, ip: str = "10.0.0.7") -> bytes:
    """Redeem as a view does: commit on success *and* on refusal (the refusal is audited)."""
    with deployment.db.session() as s:
        try:
            return media.redeem(s, deployment, token, session_id, rid, ip=ip)
        except media.MediaNotFound:
            s.commit()
            raise


def test_play_returns_watermarked_wav_once(dep, speech) -> None:
    (rid,), (aid,) = leased(dep, speech)
    token = issue(dep, "sess-1", rid, aid)
    wav = redeem(dep, token, "sess-1", rid)
    played, rate = sf.read(io.BytesIO(wav), dtype="float32")
    assert rate == 16000 and played.shape == speech.shape
    assert watermark.snr_db(speech, played) >= 30.0
    with dep.db.session() as s:
        row = s.scalar(select(Delivery).where(Delivery.assignment_id == aid))
        assert row.used_at is not None and row.ip == "10.0.0.7" and row.reviewer_id == rid
        assert token not in {row.token_hash, row.session_hash} and len(row.token_hash) == 64
        found = watermark.detect(played, media.watermark_key(dep), [row.mark, row.mark + 1])
        assert found.match is not None and found.match.payload == row.mark
        assert s.get(Assignment, aid).audio_first_at is not None  # the review service saw the delivery
    with pytest.raises(media.MediaNotFound):
        redeem(dep, token, "sess-1", rid)


def test_redeem_watermarks_before_taking_the_audit_lock(dep, speech, monkeypatch) -> None:
    """The audit append locks the log's head until commit: decrypting and watermarking come first."""
    from earshot.audit import services as audit_services

    (rid,), (aid,) = leased(dep, speech)
    token = issue(dep, "sess-1", rid, aid)
    order: list[str] = []
    real_mark, real_record = media.watermarked_wav, audit_services.record

    def mark(*args, **kwargs):
        order.append("watermark")
        return real_mark(*args, **kwargs)

    def record(session, **kwargs):
        order.append(kwargs["action"])
        return real_record(session, **kwargs)

    monkeypatch.setattr(media, "watermarked_wav", mark)
    monkeypatch.setattr(audit_services, "record", record)
    wav = redeem(dep, token, "sess-1", rid)
    assert wav[:4] == b"RIFF"
    assert order == ["watermark", "audio.delivered"]
    with dep.db.session() as s:
        assert s.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "audio.delivered")
        ) == 1
        assert s.get(Assignment, aid).deliveries == 1


def test_expired_token_is_not_found(dep, speech) -> None:
    (rid,), (aid,) = leased(dep, speech)
    token = issue(dep, "sess-1", rid, aid)
    with dep.db.session() as s:
        s.execute(update(Delivery).values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(media.MediaNotFound):
        redeem(dep, token, "sess-1", rid)


def test_token_is_short_lived() -> None:
    assert media.TOKEN_TTL <= timedelta(seconds=60)


def test_other_session_or_reviewer_is_not_found_and_audited(dep, speech) -> None:
    (rid,), (aid,) = leased(dep, speech)
    other = reviewer(dep)
    token = issue(dep, "sess-1", rid, aid)
    with pytest.raises(media.MediaNotFound):
        redeem(dep, token, "sess-2", rid)
    with pytest.raises(media.MediaNotFound):
        redeem(dep, token, "sess-1", other)
    with dep.db.session() as s:
        reasons = list(s.scalars(select(AuditRecord.details).where(AuditRecord.action == "media.refused")))
    assert len(reasons) == 2 and "other session" in reasons[0] and "other reviewer" in reasons[1]
    assert redeem(dep, token, "sess-1", rid)  # the rightful holder can still play it


def test_unknown_tokens_and_foreign_leases_are_not_found(dep, speech) -> None:
    (rid,), (aid,) = leased(dep, speech)
    other = reviewer(dep)
    for token in ("", "x", "A" * 43, "A" * 500):
        with pytest.raises(media.MediaNotFound):
            redeem(dep, token, "sess-1", rid)
    with dep.db.session() as s, pytest.raises(media.MediaNotFound):
        media.issue_media_url(s, dep, "sess-9", other, aid)
    with dep.db.session() as s, pytest.raises(media.MediaNotFound):
        media.issue_media_url(s, dep, "sess-1", rid, "0" * 32)


def test_lease_ended_after_issue_is_not_found(dep, speech) -> None:
    (rid,), (aid,) = leased(dep, speech)
    token = issue(dep, "sess-1", rid, aid)
    with dep.db.session() as s:
        s.execute(update(Assignment).where(Assignment.id == aid).values(status="expired"))
    with pytest.raises(media.MediaNotFound):
        redeem(dep, token, "sess-1", rid)


def test_each_play_is_its_own_delivery_with_its_own_mark(dep, speech) -> None:
    (rid,), (aid,) = leased(dep, speech)
    first = redeem(dep, issue(dep, "sess-1", rid, aid), "sess-1", rid)
    second = redeem(dep, issue(dep, "sess-1", rid, aid), "sess-1", rid)
    assert first != second
    with dep.db.session() as s:
        marks = list(s.scalars(select(Delivery.mark).where(Delivery.assignment_id == aid)))
    assert len(set(marks)) == 2


def test_play_limit(dep, speech, monkeypatch) -> None:
    monkeypatch.setattr(media, "MAX_DELIVERIES_PER_ASSIGNMENT", 2)
    (rid,), (aid,) = leased(dep, speech)
    issue(dep, "s", rid, aid)
    issue(dep, "s", rid, aid)
    with dep.db.session() as s, pytest.raises(media.PlayLimit):
        media.issue_media_url(s, dep, "s", rid, aid)


def test_purge_unused_keeps_deliveries_that_carried_audio(dep, speech) -> None:
    (rid,), (aid,) = leased(dep, speech)
    redeem(dep, issue(dep, "s", rid, aid), "s", rid)
    issue(dep, "s", rid, aid)
    with dep.db.session() as s:
        assert media.purge_unused(s, utcnow() + timedelta(minutes=5)) == 1
        assert s.scalar(select(func.count()).select_from(Delivery)) == 1


def add_fake_deliveries(deployment: Deployment, n: int) -> None:
    """`n` other delivered plays (only their marks matter to a trace)."""
    rng = np.random.default_rng(11)
    now = utcnow()
    rows = [
        {
            "id": f"{i:032x}",
            "mark": int(m),
            "token_hash": f"{i:064x}",
            "session_hash": "0" * 64,
            "reviewer_id": "r" * 32,
            "assignment_id": "a" * 32,
            "snippet_id": "s" * 32,
            "created_at": now,
            "expires_at": now,
            "used_at": now,
        }
        for i, m in enumerate(rng.integers(1, 2**47, n), start=1)
    ]
    with deployment.db.session() as s:
        s.execute(Delivery.__table__.insert(), rows)


def test_trace_names_the_leaking_delivery_among_many(dep, speech) -> None:
    """Two reviewers hear the same snippet; a 5 s MP3 piece at another volume names the right one."""
    rids, aids = leased(dep, speech, reviewers=2)
    wavs = [
        redeem(dep, issue(dep, f"sess-{i}", rid, aid), f"sess-{i}", rid)
        for i, (rid, aid) in enumerate(zip(rids, aids, strict=True))
    ]
    add_fake_deliveries(dep, 1200)
    played, _ = sf.read(io.BytesIO(wavs[1]), dtype="float32")
    leaked = decode_audio(mp3(played))[8000:88000] * 0.4
    with dep.db.session() as s:
        report = trace_audio(s, dep, leaked)
        assert report.candidates == 1202
        assert report.match is not None and not report.also
        assert report.match.reviewer_id == rids[1] and report.match.assignment_id == aids[1]
        assert report.match.confidence > 0.999999
        expected = s.scalar(select(Delivery.id).where(Delivery.assignment_id == aids[1]))
        assert report.match.delivery_id == expected
    with dep.db.session() as s:
        report = trace_audio(s, dep, speech[:80000])
        assert report.match is None
    with dep.db.session() as s:  # audited (on PostgreSQL the record is sequenced at commit)
        logged = s.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "watermark.traced")
        )
        assert logged == 2
        assert s.execute(text("select count(*) from deliveries")).scalar() == 1202


def test_concurrent_redeems_deliver_once(dep, speech) -> None:
    """Eight simultaneous requests with one token: exactly one gets audio."""
    from concurrent.futures import ThreadPoolExecutor

    (rid,), (aid,) = leased(dep, speech)
    token = issue(dep, "sess-1", rid, aid)

    def attempt(_: int) -> bool:
        try:
            return bool(redeem(dep, token, "sess-1", rid))
        except media.MediaNotFound:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count(True) == 1
    with dep.db.session() as s:
        assert s.get(Assignment, aid).deliveries == 1


def test_direct_delivery_for_a_lead_is_traceable(dep, speech) -> None:
    lead = reviewer(dep)
    with dep.db.session() as s:
        wav = media.deliver_direct(s, dep, user_id=lead, snippet_id="e" * 32, wav=media.pcm16_wav(speech),
                                   principal_session_id="lead-sess", ip="10.9.9.9")
    played, _ = sf.read(io.BytesIO(wav), dtype="float32")
    assert watermark.snr_db(speech, played) >= 30.0
    with dep.db.session() as s:
        report = trace_audio(s, dep, decode_audio(mp3(played))[:80000])
        assert report.match is not None and report.match.reviewer_id == lead
        assert report.match.snippet_id == "e" * 32 and report.match.ip == "10.9.9.9"


def test_only_the_token_commit_skips_the_wal_flush(dep, speech) -> None:
    """Issuing a URL stores nothing a crash could make matter; the delivery and its audit stay durable."""
    if dep.db.engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL setting")
    (rid,), (aid,) = leased(dep, speech)
    with dep.db.session() as s:
        url = media.issue_media_url(s, dep, "sess-1", rid, aid)
        assert s.execute(text("SHOW synchronous_commit")).scalar() == "off"
    with dep.db.session() as s:
        media.redeem(s, dep, url.removeprefix(media.MEDIA_PREFIX), "sess-1", rid)
        assert s.execute(text("SHOW synchronous_commit")).scalar() == "on"
