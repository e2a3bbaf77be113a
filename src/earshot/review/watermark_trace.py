"""Tracing a leaked recording back to the delivery (reviewer, snippet, time) whose watermark it carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.audit import services as audit
from earshot.deployment import Deployment
from earshot.review import watermark
from earshot.review.delivery_models import Delivery
from earshot.review.media import watermark_key


@dataclass(frozen=True)
class TracedDelivery:
    """A delivery whose watermark is in the audio, and how sure the trace is."""

    delivery_id: str
    reviewer_id: str  # the account's random id (pseudonymous)
    snippet_id: str
    assignment_id: str
    delivered_at: datetime | None
    ip: str | None
    z: float  # correlation score in standard deviations of chance
    false_match_probability: float  # bound on a wrong delivery scoring this high

    @property
    def confidence(self) -> float:
        return 1.0 - self.false_match_probability


@dataclass(frozen=True)
class TraceReport:
    """What a trace found: the named delivery (if any), the others that passed, and the search size."""

    match: TracedDelivery | None
    candidates: int
    duration_s: float
    best_z: float | None
    threshold_z: float
    also: list[TracedDelivery] = field(default_factory=list)  # further deliveries in the same audio


def trace_audio(
    session: Session,
    deployment: Deployment,
    audio: np.ndarray,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str = "cli:trace",
    max_false_match: float = watermark.DEFAULT_MAX_FALSE_MATCH,
) -> TraceReport:
    """Check `audio` (float mono 16 kHz) against every delivered play (optionally in a time window)."""
    stmt = select(Delivery.mark, Delivery.id).where(Delivery.used_at.is_not(None))
    if since is not None:
        stmt = stmt.where(Delivery.used_at >= since)
    if until is not None:
        stmt = stmt.where(Delivery.used_at <= until)
    by_mark = {int(mark): delivery_id for mark, delivery_id in session.execute(stmt)}
    detection = watermark.detect(audio, watermark_key(deployment), by_mark.keys(),
                                 max_false_match=max_false_match)
    found = [_traced(session, by_mark[m.payload], m) for m in detection.matches]
    report = TraceReport(
        match=found[0] if found else None,
        candidates=detection.candidates,
        duration_s=detection.duration_s,
        best_z=detection.best.z if detection.best else None,
        threshold_z=watermark.threshold(detection.candidates, max_false_match),
        also=found[1:],
    )
    audit.record(session, actor=actor, action="watermark.traced",
                 target=report.match.delivery_id if report.match else None,
                 details={"candidates": report.candidates, "matched": len(found),
                          "best_z": round(report.best_z, 2) if report.best_z is not None else None})
    return report


def _traced(session: Session, delivery_id: str, match: watermark.Match) -> TracedDelivery:
    row = session.get(Delivery, delivery_id)
    assert row is not None  # noqa: S101 - selected in the same transaction
    return TracedDelivery(row.id, row.reviewer_id, row.snippet_id, row.assignment_id, row.used_at, row.ip,
                          match.z, match.false_match_probability)
