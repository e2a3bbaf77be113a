"""Insider-threat monitoring: rules over the audit event stream that raise alerts.

`record()` calls `check_event` for every record it appends, in the same transaction, so an alert
exists exactly when its evidence does. Every rule reads only the log (and small state tables kept
from it) and judges time by the records' own timestamps, never the wall clock.

Rules (thresholds in `MonitorPolicy`):

- `delivery_rate`: audio deliveries to one reviewer in the last hour far above that reviewer's norm
  (mean per active hour over the previous 14 days; a default norm without history);
- `snippet_replay`: one snippet delivered to one reviewer more than `replay_max` times in 24 h;
- `off_shift`: a person working outside their shift (`set_shift`, else the default shift);
- `new_network`: a person seen from a network (IPv4 /24, IPv6 /48) never seen for them before;
- `denied_burst`: repeated denied or failed requests by one actor (or one address) in 10 minutes;
- `session_overlap`: two live sessions of one person from different devices or addresses;
- `canary`: any event whose target is a canary snippet (critical, every time).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from earshot.audit import events
from earshot.audit.context import context_for
from earshot.audit.models import (
    Alert,
    AuditActorProfile,
    AuditActorSession,
    AuditCanary,
    AuditKnownNetwork,
    AuditRecord,
)
from earshot.database import UTCDateTime, utcnow

INFO, WARNING, CRITICAL = "info", "warning", "critical"
RULES = (
    "delivery_rate",
    "snippet_replay",
    "off_shift",
    "new_network",
    "denied_burst",
    "session_overlap",
    "canary",
)


@dataclass(frozen=True)
class MonitorPolicy:
    """Thresholds of the rules. Deployment settings `audit_*` of the same names override them."""

    rate_min: int = 20  # never alert below this many deliveries in an hour
    rate_factor: float = 3.0  # alert above this multiple of the reviewer's hourly norm
    rate_default_norm: float = 60.0  # hourly norm of a reviewer without history
    rate_history_days: int = 14
    rate_check_every: int = 10  # the norm is evaluated at rate_min and every N deliveries after
    replay_max: int = 3
    denied_max: int = 5
    denied_window_minutes: float = 10.0
    default_shift: str = "06:00-20:00"
    default_tz: str = "UTC"
    session_idle_minutes: float = 15.0
    overlap_minutes: float = 5.0  # two addresses active within this window: overlapping sessions
    cooldown_minutes: float = 60.0  # one alert per rule and actor (and target) per this period


_DEFAULT_POLICY = MonitorPolicy()


def policy_for(session: Session) -> MonitorPolicy:
    """The policy of the deployment `session` belongs to (defaults when not installed)."""
    ctx = context_for(session)
    if ctx is None:
        return _DEFAULT_POLICY
    if isinstance(ctx.monitor_policy, MonitorPolicy):
        return ctx.monitor_policy
    settings = ctx.deployment.settings
    overrides: dict[str, Any] = {}
    for name in MonitorPolicy.__dataclass_fields__:
        value = getattr(settings, f"audit_{name}", None)
        if value is not None:
            overrides[name] = value
    if (
        getattr(settings, "session_idle_minutes", None) is not None
        and "session_idle_minutes" not in overrides
    ):
        overrides["session_idle_minutes"] = settings.session_idle_minutes  # type: ignore[attr-defined]
    ctx.monitor_policy = MonitorPolicy(**overrides)
    return ctx.monitor_policy


# -- alerts ---------------------------------------------------------------------------------------
def raise_alert(
    session: Session,
    *,
    severity: str,
    rule: str,
    actor: str,
    target: str | None = None,
    record: AuditRecord | None = None,
    details: dict[str, Any] | None = None,
) -> Alert:
    """Store an alert (in the caller's transaction)."""
    alert = Alert(
        severity=severity,
        rule=rule,
        actor=actor,
        target=target,
        record_seq=record.seq if record is not None else None,
        details=json.dumps(details or {}, sort_keys=True, separators=(",", ":"), default=str),
        created_at=record.at if record is not None else utcnow(),
    )
    session.add(alert)
    session.flush()
    return alert


def _recent_alert(
    session: Session, rule: str, actor: str, since: datetime, target: str | None = None
) -> bool:
    query = select(Alert.id).where(
        Alert.rule == rule, Alert.actor == actor, Alert.created_at > since, Alert.acknowledged_at.is_(None)
    )
    if target is not None:
        query = query.where(Alert.target == target)
    return session.execute(query.limit(1)).first() is not None


def list_alerts(
    session: Session,
    *,
    acknowledged: bool | None = None,
    severity: str | None = None,
    rule: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Alert]:
    """Alerts, newest first, filtered."""
    query = select(Alert)
    if acknowledged is not None:
        query = query.where(
            Alert.acknowledged_at.is_not(None) if acknowledged else Alert.acknowledged_at.is_(None)
        )
    if severity:
        query = query.where(Alert.severity == severity)
    if rule:
        query = query.where(Alert.rule == rule)
    if actor:
        query = query.where(Alert.actor == actor)
    if since:
        query = query.where(Alert.created_at >= since)
    return list(session.scalars(query.order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)))


def acknowledge(session: Session, alert_id: int, *, by: str, ip: str | None = None) -> Alert | None:
    """Mark an alert acknowledged; the acknowledgement itself is audited."""
    from earshot.audit.services import record

    alert = session.get(Alert, alert_id)
    if alert is None:
        return None
    if alert.acknowledged_at is None:
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by = by
        record(
            session,
            actor=by,
            action=events.ALERT_ACKNOWLEDGED,
            target=str(alert.id),
            ip=ip,
            details={"rule": alert.rule, "alert_actor": alert.actor},
        )
    return alert


# -- canaries -------------------------------------------------------------------------------------
def register_canary(
    session: Session, snippet_id: str, *, label: str = "", actor: str = "system"
) -> AuditCanary:
    """Mark a (synthetic, fake-PII) snippet as a canary: any request for it raises a critical alert.

    The snippet must be kept out of every legitimate workflow (never queued or exported).
    """
    from sqlalchemy import update

    from earshot.audit.services import record
    from earshot.review.models import Snippet

    canary = session.get(AuditCanary, snippet_id)
    if canary is None:
        canary = AuditCanary(snippet_id=snippet_id, label=label[:64], created_at=utcnow())
        session.add(canary)
        # Out of every legitimate workflow: never queued, assigned or exported again.
        session.execute(
            update(Snippet).where(Snippet.id == snippet_id).values(status="canary", in_flight=0)
        )
        session.flush()
        record(
            session,
            actor=actor,
            action=events.CANARY_REGISTERED,
            details={"label": label[:64]},
            monitor=False,
        )
    return canary


def is_canary(session: Session, snippet_id: str | None) -> bool:
    """Is `snippet_id` a canary? (Review code may refuse it before delivering.)"""
    return bool(snippet_id) and session.get(AuditCanary, snippet_id) is not None


# -- shifts ---------------------------------------------------------------------------------------
def parse_shift(shift: str) -> tuple[time, time]:
    """'HH:MM-HH:MM' -> (start, end); end before start means the shift crosses midnight."""
    start_text, end_text = shift.split("-", 1)
    return time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())


def set_shift(session: Session, actor: str, shift: str, tz: str = "UTC") -> AuditActorProfile:
    """Set one person's working shift (local time in `tz`)."""
    parse_shift(shift)
    ZoneInfo(tz)
    user_id = events.person_of(actor)
    actor = events.user_actor(user_id) if user_id else actor
    profile = session.get(AuditActorProfile, actor)
    if profile is None:
        profile = AuditActorProfile(actor=actor, shift=shift, tz=tz)
        session.add(profile)
    else:
        profile.shift, profile.tz = shift, tz
    session.flush()
    return profile


def in_shift(at: datetime, shift: str, tz: str) -> bool:
    """Is the UTC instant `at` inside the shift in time zone `tz`?"""
    start, end = parse_shift(shift)
    try:
        local = at.astimezone(ZoneInfo(tz)).time()
    except ZoneInfoNotFoundError:
        local = at.time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end


# -- the rules ------------------------------------------------------------------------------------
_T = UTCDateTime()
# What the rules need to know about one event, in one round trip.
_STATE = text(
    "SELECT"
    " (SELECT 1 FROM audit_canaries WHERE snippet_id = :target),"
    " (SELECT shift FROM audit_actor_profiles WHERE actor = :actor),"
    " (SELECT tz FROM audit_actor_profiles WHERE actor = :actor),"
    " (SELECT 1 FROM audit_known_networks WHERE actor = :actor AND network = :network),"
    " (SELECT 1 FROM audit_known_networks WHERE actor = :actor LIMIT 1),"
    " (SELECT count(*) FROM audit_actor_sessions"
    "  WHERE actor = :actor AND session_ref != :ref AND ended_at IS NULL AND last_seen >= :live),"
    " (SELECT 1 FROM audit_actor_sessions"
    "  WHERE actor = :actor AND session_ref = :ref AND ended_at IS NULL AND last_seen >= :fresh)"
).bindparams(bindparam("live", type_=_T), bindparam("fresh", type_=_T))
SESSION_TOUCH_SECONDS = 60  # a live session's last_seen is rewritten at most this often
_DELIVERY_COUNTS = text(
    "SELECT"
    " (SELECT count(*) FROM audit_records"
    "  WHERE actor IN :actors AND action = :action AND at > :hour AND at <= :at),"
    " (SELECT count(*) FROM audit_records"
    "  WHERE target = :target AND actor IN :actors AND action = :action AND at > :day AND at <= :at)"
).bindparams(
    bindparam("hour", type_=_T),
    bindparam("day", type_=_T),
    bindparam("at", type_=_T),
    bindparam("actors", expanding=True),
)


@dataclass
class _Facts:
    person: str | None = None  # "user:<id>" when the actor is a person, whichever form it was written in
    actors: tuple[str, ...] = ()  # every form of the actor string, for counting its records
    canary: bool = False
    shift: str | None = None
    tz: str | None = None
    known_network: bool = False
    any_network: bool = False
    network: str | None = None
    deliveries_hour: int = 0
    deliveries_of_target: int = 0
    session_ref: str = ""  # the session this event belongs to: its reference, or "ip:<address>"
    explicit_session: bool = False
    device: str | None = None
    other_live_sessions: int = 0
    session_fresh: bool = False  # this session was seen moments ago: no need to touch its row
    self_uncounted: int = 0  # 1 when the event is judged before it is stored (counts add it)


def _facts(session: Session, rec: AuditRecord) -> _Facts:
    user_id = events.person_of(rec.actor)
    person = events.user_actor(user_id) if user_id else None
    facts = _Facts(person=person, actors=(person, user_id) if person and user_id else (rec.actor,))
    if not rec.target and not person:
        return facts
    conn = session.connection()
    facts.network = network_of(rec.ip) if rec.ip else None
    if person is not None:
        details = json.loads(rec.details) if f'"{events.SESSION}"' in rec.details else {}
        explicit = str(details.get(events.SESSION) or "")[:64]
        facts.explicit_session = bool(explicit)
        facts.session_ref = explicit or (f"ip:{rec.ip}"[:64] if rec.ip else "")
        device = details.get(events.DEVICE)
        facts.device = str(device)[:64] if device is not None else None
    policy = policy_for(session)
    live = rec.at - timedelta(minutes=max(policy.session_idle_minutes, policy.overlap_minutes))
    params = {
        "target": rec.target,
        "actor": person,
        "network": facts.network,
        "ref": facts.session_ref,
        "live": live,
        "fresh": rec.at - timedelta(seconds=SESSION_TOUCH_SECONDS),
    }
    row = conn.execute(_STATE, params).one()
    facts.canary, facts.shift, facts.tz = bool(row[0]), row[1], row[2]
    facts.known_network, facts.any_network = bool(row[3]), bool(row[4])
    facts.other_live_sessions = int(row[5] or 0)
    facts.session_fresh = bool(row[6])
    if rec.action == events.AUDIO_DELIVERED:
        counts = conn.execute(
            _DELIVERY_COUNTS,
            {
                "actors": list(facts.actors),
                "action": rec.action,
                "target": rec.target,
                "at": rec.at,
                "hour": rec.at - timedelta(hours=1),
                "day": rec.at - timedelta(hours=24),
            },
        ).one()
        facts.deliveries_hour, facts.deliveries_of_target = int(counts[0] or 0), int(counts[1] or 0)
    return facts


def _rule_canary(session: Session, rec: AuditRecord, policy: MonitorPolicy, facts: _Facts) -> list[Alert]:
    if not facts.canary or rec.action == events.CANARY_REGISTERED:
        return []
    return [
        raise_alert(
            session,
            severity=CRITICAL,
            rule="canary",
            actor=facts.person or rec.actor,
            target=rec.target,
            record=rec,
            details={"action": rec.action, "outcome": rec.outcome, "ip": rec.ip},
        )
    ]


def _hourly_norm(session: Session, rec: AuditRecord, policy: MonitorPolicy, actors: tuple[str, ...]) -> float:
    """Mean deliveries per active hour over the history window before the last hour."""
    window_start = rec.at - timedelta(hours=1)
    rows = session.execute(
        select(AuditRecord.at).where(
            AuditRecord.actor.in_(actors),
            AuditRecord.action == events.AUDIO_DELIVERED,
            AuditRecord.at > window_start - timedelta(days=policy.rate_history_days),
            AuditRecord.at <= window_start,
        )
    ).scalars()
    hours: dict[tuple[int, int, int, int], int] = {}
    for at in rows:
        key = (at.year, at.month, at.day, at.hour)
        hours[key] = hours.get(key, 0) + 1
    if not hours:
        return policy.rate_default_norm
    return sum(hours.values()) / len(hours)


def _rule_delivery_rate(
    session: Session, rec: AuditRecord, policy: MonitorPolicy, facts: _Facts
) -> list[Alert]:
    if rec.action != events.AUDIO_DELIVERED or rec.outcome != events.OK:
        return []
    count = facts.deliveries_hour
    # The norm is consulted when the hourly count reaches the floor and every few deliveries after.
    if count < policy.rate_min or (count != policy.rate_min and count % policy.rate_check_every):
        return []
    if _recent_alert(
        session,
        "delivery_rate",
        facts.person or rec.actor,
        rec.at - timedelta(minutes=policy.cooldown_minutes),
    ):
        return []
    norm = _hourly_norm(session, rec, policy, facts.actors)
    threshold = max(policy.rate_min, policy.rate_factor * norm)
    if count <= threshold:
        return []
    return [
        raise_alert(
            session,
            severity=WARNING,
            rule="delivery_rate",
            actor=facts.person or rec.actor,
            record=rec,
            details={"last_hour": count, "norm_per_hour": round(norm, 1), "threshold": round(threshold, 1)},
        )
    ]


def _rule_replay(session: Session, rec: AuditRecord, policy: MonitorPolicy, facts: _Facts) -> list[Alert]:
    if (
        rec.action != events.AUDIO_DELIVERED
        or not rec.target
        or facts.deliveries_of_target <= policy.replay_max
    ):
        return []
    who = facts.person or rec.actor
    if _recent_alert(session, "snippet_replay", who, rec.at - timedelta(hours=24), rec.target):
        return []
    return [
        raise_alert(
            session,
            severity=WARNING,
            rule="snippet_replay",
            actor=who,
            target=rec.target,
            record=rec,
            details={"deliveries_24h": facts.deliveries_of_target},
        )
    ]


def _rule_off_shift(session: Session, rec: AuditRecord, policy: MonitorPolicy, facts: _Facts) -> list[Alert]:
    person = facts.person
    if person is None or rec.action not in events.HUMAN_ACTIVITY or rec.outcome != events.OK:
        return []
    shift, tz = (facts.shift, facts.tz or "UTC") if facts.shift else (policy.default_shift, policy.default_tz)
    if in_shift(rec.at, shift, tz):
        return []
    if _recent_alert(session, "off_shift", person, rec.at - timedelta(minutes=policy.cooldown_minutes)):
        return []
    return [
        raise_alert(
            session,
            severity=WARNING,
            rule="off_shift",
            actor=person,
            target=rec.target,
            record=rec,
            details={"action": rec.action, "shift": shift, "tz": tz},
        )
    ]


@lru_cache(maxsize=4096)
def network_of(ip: str) -> str:
    """The network an address belongs to for the new-network rule (IPv4 /24, IPv6 /48)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _insert_ignore(session: Session, model: type, values: dict[str, Any]) -> int:
    dialect = session.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)
    return session.execute(ins.values(**values).on_conflict_do_nothing()).rowcount or 0


def _rule_new_network(
    session: Session, rec: AuditRecord, policy: MonitorPolicy, facts: _Facts
) -> list[Alert]:
    person = facts.person
    if not facts.network or facts.known_network or person is None or rec.outcome != events.OK:
        return []
    values = {"actor": person, "network": facts.network, "first_seen": rec.at}
    if not _insert_ignore(session, AuditKnownNetwork, values):
        return []  # a concurrent transaction recorded it first
    if not facts.any_network:
        return []  # the first network of a person is their baseline
    return [
        raise_alert(
            session,
            severity=WARNING,
            rule="new_network",
            actor=person,
            record=rec,
            details={"network": facts.network, "action": rec.action},
        )
    ]


def _rule_denied_burst(
    session: Session, rec: AuditRecord, policy: MonitorPolicy, facts: _Facts
) -> list[Alert]:
    if rec.outcome not in (events.DENIED, events.FAILED):
        return []
    since = rec.at - timedelta(minutes=policy.denied_window_minutes)
    anonymous = not rec.actor or rec.actor in ("anonymous", "unknown")
    who = AuditRecord.ip == rec.ip if anonymous else AuditRecord.actor.in_(facts.actors)
    key = f"ip:{rec.ip}" if anonymous else (facts.person or rec.actor)
    count = int(
        session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(
                who,
                AuditRecord.outcome.in_((events.DENIED, events.FAILED)),
                AuditRecord.at > since,
                AuditRecord.at <= rec.at,
            )
        )
        or 0
    ) + facts.self_uncounted
    if count < policy.denied_max or _recent_alert(session, "denied_burst", key, since):
        return []
    return [
        raise_alert(
            session,
            severity=WARNING,
            rule="denied_burst",
            actor=key,
            record=rec,
            details={
                "count": count,
                "window_minutes": policy.denied_window_minutes,
                "last_action": rec.action,
            },
        )
    ]


@lru_cache(maxsize=4)
def _upsert_session_statement(dialect: str) -> Any:
    table = AuditActorSession.__table__
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return ins.on_conflict_do_update(
        index_elements=[table.c.actor, table.c.session_ref],
        set_={"last_seen": ins.excluded.last_seen, "ip": ins.excluded.ip, "ended_at": None},
    )


def _upsert_session(session: Session, values: dict[str, Any]) -> None:
    conn = session.connection()
    conn.execute(_upsert_session_statement(conn.dialect.name), values)


def _rule_session_overlap(
    session: Session, rec: AuditRecord, policy: MonitorPolicy, facts: _Facts
) -> list[Alert]:
    """Two live sessions of one person on different devices or addresses.

    Events that carry a session reference (details "session", "device") are tracked per session;
    events without one are tracked per address, and two addresses active within `overlap_minutes`
    count as overlapping sessions.
    """
    person, ref = facts.person, facts.session_ref
    if person is None or not ref:
        return []
    if rec.action in events.SESSION_ENDS:
        session.execute(
            update(AuditActorSession)
            .where(AuditActorSession.actor == person, AuditActorSession.session_ref == ref)
            .values(ended_at=rec.at, last_seen=rec.at)
        )
        return []
    if not facts.session_fresh:  # a session seen moments ago keeps its row as it is
        _upsert_session(
            session,
            {
                "actor": person,
                "session_ref": ref,
                "device": facts.device,
                "ip": rec.ip,
                "first_seen": rec.at,
                "last_seen": rec.at,
            },
        )
    if not facts.other_live_sessions:
        return []
    idle = timedelta(minutes=policy.session_idle_minutes)
    overlap = timedelta(minutes=policy.overlap_minutes)
    others = session.execute(
        select(
            AuditActorSession.session_ref,
            AuditActorSession.device,
            AuditActorSession.ip,
            AuditActorSession.last_seen,
        ).where(
            AuditActorSession.actor == person,
            AuditActorSession.session_ref != ref,
            AuditActorSession.ended_at.is_(None),
            AuditActorSession.last_seen >= rec.at - max(idle, overlap),
        )
    ).all()
    clashing = []
    for other in others:
        by_address = other.session_ref.startswith("ip:") or not facts.explicit_session
        if other.last_seen < rec.at - (overlap if by_address else idle):
            continue
        device_differs = (
            other.device is not None and facts.device is not None and other.device != facts.device
        )
        if (other.ip or None) != rec.ip or (not by_address and device_differs):
            clashing.append(other)
    if not clashing:
        return []
    if _recent_alert(session, "session_overlap", person, rec.at - timedelta(minutes=policy.cooldown_minutes)):
        return []
    return [
        raise_alert(
            session,
            severity=WARNING,
            rule="session_overlap",
            actor=person,
            record=rec,
            details={
                "sessions": len(clashing) + 1,
                "ips": sorted({o.ip or "" for o in clashing} | {rec.ip or ""}),
            },
        )
    ]


_RULES = (
    _rule_canary,
    _rule_delivery_rate,
    _rule_replay,
    _rule_off_shift,
    _rule_new_network,
    _rule_denied_burst,
    _rule_session_overlap,
)


def check_event(session: Session, record: AuditRecord, *, stored: bool = True) -> list[Alert]:
    """Run every rule on one record; returns the alerts raised (already in the session).

    `stored=False`: the record is about to be appended in this transaction but is not in the table
    yet (`record` judges it before locking the log's head), so the counts include it themselves.
    """
    policy = policy_for(session)
    facts = _facts(session, record)
    facts.self_uncounted = 0 if stored else 1
    facts.deliveries_hour += facts.self_uncounted if record.action == events.AUDIO_DELIVERED else 0
    facts.deliveries_of_target += facts.self_uncounted if record.action == events.AUDIO_DELIVERED else 0
    raised: list[Alert] = []
    for rule in _RULES:
        raised.extend(rule(session, record, policy, facts))
    return raised
