"""Each monitoring rule: an event stream that must raise its alert, and a similar one that must not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from fastapi.testclient import TestClient

from earshot.audit import events, monitoring, services
from earshot.audit.models import Alert

from .conftest import audit_app_for, run_cli

R1, R2 = "user:reviewer-one", "user:reviewer-two"


def emit(dep, actor, action, *, target=None, outcome="ok", ip="10.1.2.3", details=None):
    with dep.db.session() as session:
        services.record(
            session, actor=actor, action=action, target=target, outcome=outcome, ip=ip, details=details
        )


def alerts(dep, rule=None):
    with dep.db.session() as session:
        return [(a.rule, a.actor, a.severity, a.target) for a in monitoring.list_alerts(session, rule=rule)]


def deliveries(dep, clock, actor, count, *, minutes, snippet_prefix="s"):
    """`count` deliveries of distinct snippets spread evenly over `minutes` from the clock's time."""
    step = minutes / count
    for i in range(count):
        emit(dep, actor, events.AUDIO_DELIVERED, target=f"{snippet_prefix}{clock.now.timestamp()}-{i}")
        clock.advance(minutes=step)


def history(dep, clock, actor, per_hour, *, days=2, hours=(8, 9, 10, 11)):
    """A reviewer's normal working pattern before 'today'."""
    today = clock.now
    for d in range(days, 0, -1):
        for h in hours:
            clock.set((today - timedelta(days=d)).replace(hour=h, minute=0))
            deliveries(dep, clock, actor, per_hour, minutes=50)
    clock.set(today)


# -- delivery rate -------------------------------------------------------------------------------
def test_deliveries_far_above_the_reviewers_norm_raise_an_alert(dep, clock):
    history(dep, clock, R1, per_hour=10)
    deliveries(dep, clock, R1, 40, minutes=50)
    found = alerts(dep, "delivery_rate")
    assert found == [("delivery_rate", R1, "warning", None)]


def test_a_busy_hour_within_the_reviewers_norm_raises_nothing(dep, clock):
    history(dep, clock, R1, per_hour=20)
    deliveries(dep, clock, R1, 50, minutes=50)  # 2.5x their own norm: busy, not anomalous
    history(dep, clock, R2, per_hour=10)
    deliveries(dep, clock, R2, 25, minutes=50)  # below the absolute floor plus factor
    assert alerts(dep, "delivery_rate") == []


# -- replays -------------------------------------------------------------------------------------
def test_replaying_one_snippet_many_times_raises_an_alert(dep, clock):
    for _ in range(4):
        emit(dep, R1, events.AUDIO_DELIVERED, target="snippet-x")
        clock.advance(minutes=1)
    assert alerts(dep, "snippet_replay") == [("snippet_replay", R1, "warning", "snippet-x")]


def test_listening_again_a_few_times_raises_nothing(dep, clock):
    for _ in range(3):
        emit(dep, R1, events.AUDIO_DELIVERED, target="snippet-x")
        emit(dep, R2, events.AUDIO_DELIVERED, target="snippet-x")
        clock.advance(minutes=1)
    assert alerts(dep, "snippet_replay") == []


# -- shifts --------------------------------------------------------------------------------------
def test_work_outside_the_default_shift_raises_an_alert(dep, clock):
    clock.set(datetime(2026, 3, 4, 23, 30, tzinfo=UTC))
    emit(dep, R1, events.AUDIO_DELIVERED, target="s1")
    emit(dep, R1, events.AUDIO_DELIVERED, target="s2")  # one alert per hour, not per event
    assert alerts(dep, "off_shift") == [("off_shift", R1, "warning", "s1")]


def test_work_inside_a_personal_night_shift_raises_nothing_but_daytime_does(dep, clock):
    with dep.db.session() as session:
        monitoring.set_shift(session, R1, "22:00-06:00", "Asia/Tokyo")
    clock.set(datetime(2026, 3, 4, 14, 30, tzinfo=UTC))  # 23:30 in Tokyo
    emit(dep, R1, events.LOGIN)
    emit(dep, R1, events.AUDIO_DELIVERED, target="s1")
    emit(dep, "pipeline", "pipeline.processed", target="r1")  # not a person
    assert alerts(dep, "off_shift") == []
    clock.set(datetime(2026, 3, 4, 3, 0, tzinfo=UTC))  # noon in Tokyo
    emit(dep, R1, events.AUDIO_DELIVERED, target="s2")
    assert alerts(dep, "off_shift") == [("off_shift", R1, "warning", "s2")]


# -- networks ------------------------------------------------------------------------------------
def test_a_new_network_raises_an_alert(dep, clock):
    emit(dep, R1, events.LOGIN, ip="10.1.2.3")
    emit(dep, R1, events.LOGIN, ip="203.0.113.9")
    assert alerts(dep, "new_network") == [("new_network", R1, "warning", None)]


def test_the_usual_network_raises_nothing(dep, clock):
    emit(dep, R1, events.LOGIN, ip="10.1.2.3")  # the first network is the baseline
    emit(dep, R1, events.AUDIO_DELIVERED, ip="10.1.2.77", target="s1")  # same /24
    emit(dep, R2, events.LOGIN, ip="203.0.113.9")  # someone else's first network
    assert alerts(dep, "new_network") == []


# -- denied requests -----------------------------------------------------------------------------
def test_repeated_denied_requests_raise_an_alert(dep, clock):
    for _ in range(5):
        emit(dep, R1, events.AUTHZ_DENIED, outcome=events.DENIED, details={"route": "/api/v1/users"})
        clock.advance(minutes=1)
    for _ in range(5):  # failed sign-ins of unknown accounts, from one address
        emit(dep, "anonymous", events.LOGIN, outcome=events.FAILED, ip="198.51.100.7")
    found = alerts(dep, "denied_burst")
    assert sorted(a[1] for a in found) == sorted([R1, "ip:198.51.100.7"])


def test_occasional_denied_requests_raise_nothing(dep, clock):
    for _ in range(6):
        emit(dep, R1, events.AUTHZ_DENIED, outcome=events.DENIED)
        clock.advance(minutes=4)  # never 5 within 10 minutes
    for _ in range(4):
        emit(dep, "anonymous", events.LOGIN, outcome=events.FAILED, ip="198.51.100.7")
    assert alerts(dep, "denied_burst") == []


# -- overlapping sessions ------------------------------------------------------------------------
def test_sessions_overlapping_across_devices_raise_an_alert(dep, clock):
    emit(dep, R1, events.LOGIN, ip="10.1.2.3", details={"session": "a", "device": "laptop"})
    clock.advance(minutes=3)
    emit(dep, R1, events.LOGIN, ip="10.1.2.50", details={"session": "b", "device": "phone"})
    assert alerts(dep, "session_overlap") == [("session_overlap", R1, "warning", None)]


def test_sequential_or_stale_sessions_raise_nothing(dep, clock):
    emit(dep, R1, events.LOGIN, details={"session": "a", "device": "laptop"})
    emit(dep, R1, events.SESSION_END, details={"session": "a", "device": "laptop", "reason": "logout"})
    emit(dep, R1, events.LOGIN, ip="10.1.2.50", details={"session": "b", "device": "phone"})
    clock.advance(minutes=30)  # b went idle without a logout
    emit(dep, R1, events.LOGIN, details={"session": "c", "device": "laptop"})
    emit(dep, R1, events.LOGIN, details={"session": "d", "device": "laptop"})  # same device, same place
    assert alerts(dep, "session_overlap") == []


# -- canaries ------------------------------------------------------------------------------------
def test_requesting_a_canary_raises_a_critical_alert_every_time(dep, clock):
    with dep.db.session() as session:
        monitoring.register_canary(session, "canary-1", label="fake card number")
        assert monitoring.is_canary(session, "canary-1")
        assert not monitoring.is_canary(session, "ordinary")
    emit(dep, R1, events.AUDIO_DELIVERED, target="canary-1")
    emit(dep, R2, events.AUTHZ_DENIED, target="canary-1", outcome=events.DENIED)  # even a refused request
    found = alerts(dep, "canary")
    assert sorted(found) == [("canary", R1, "critical", "canary-1"), ("canary", R2, "critical", "canary-1")]


def test_ordinary_snippets_raise_no_canary_alert(dep, clock):
    with dep.db.session() as session:
        monitoring.register_canary(session, "canary-1")
    emit(dep, R1, events.TASK_ASSIGNED, target="ordinary")
    emit(dep, R1, events.AUDIO_DELIVERED, target="ordinary")
    assert alerts(dep, "canary") == []


# -- visible to leads and admins -----------------------------------------------------------------
def test_alerts_are_listed_and_acknowledged_over_the_api_and_cli(dep, clock):
    from earshot.audit import views

    with dep.db.session() as session:
        monitoring.register_canary(session, "canary-1")
    emit(dep, R1, events.AUDIO_DELIVERED, target="canary-1")
    app = audit_app_for(dep)
    app.dependency_overrides[views.ALERT_READERS] = lambda: SimpleNamespace(user_id="lead-1", role="lead")
    with TestClient(app, base_url="http://127.0.0.1") as client:  # a POST without the CSRF token
        assert client.post("/api/v1/audit/alerts/1/acknowledge").status_code == 403
    app.dependency_overrides[views.require_csrf] = lambda: None
    with TestClient(app, base_url="http://127.0.0.1") as client:
        listed = client.get("/api/v1/audit/alerts", params={"acknowledged": False}).json()
        assert [(a["rule"], a["severity"], a["target"]) for a in listed] == [
            ("canary", "critical", "canary-1")
        ]
        assert "canary-1" in run_cli(dep, "alerts").output
        ack = client.post(f"/api/v1/audit/alerts/{listed[0]['id']}/acknowledge")
        assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "user:lead-1"
        assert client.get("/api/v1/audit/alerts", params={"acknowledged": False}).json() == []
        assert client.post("/api/v1/audit/alerts/999/acknowledge").status_code == 404
    with dep.db.session() as session:
        assert session.get(Alert, listed[0]["id"]).acknowledged_at is not None
    shown = run_cli(dep, "show", "--action", "alert.acknowledged", "--json")
    assert '"actor": "user:lead-1"' in shown.output


# -- events as the access domain writes them (bare user id, no session reference) -----------------
UID = "0123456789abcdef0123456789abcdef"


def test_two_addresses_active_at_once_count_as_overlapping_sessions(dep, clock):
    emit(dep, UID, events.LOGIN, ip="10.1.2.3")  # bare id, as access control writes it
    clock.advance(minutes=2)
    emit(dep, f"user:{UID}", events.AUDIO_DELIVERED, target="s1", ip="10.9.8.7")  # same person elsewhere
    assert alerts(dep, "session_overlap") == [("session_overlap", f"user:{UID}", "warning", None)]
    assert alerts(dep, "new_network") == [("new_network", f"user:{UID}", "warning", None)]


def test_moving_between_addresses_after_logging_out_raises_nothing(dep, clock):
    emit(dep, UID, events.LOGIN, ip="10.1.2.3")
    emit(dep, UID, events.LOGOUT, ip="10.1.2.3")
    emit(dep, UID, events.LOGIN, ip="10.1.2.40")
    clock.advance(minutes=20)  # long after the last activity from .40
    emit(dep, UID, events.LOGIN, ip="10.1.2.41")
    assert alerts(dep, "session_overlap") == []


def test_an_alert_names_the_record_that_raised_it(dep, clock):
    """Rules judge an event before its append locks the log's head; the alert still gets its seq."""
    from sqlalchemy import select

    from earshot.audit.models import AuditRecord

    for _ in range(4):
        emit(dep, R1, events.AUDIO_DELIVERED, target="snippet-y")
        clock.advance(minutes=1)
    with dep.db.session() as session:
        alert = session.scalars(select(Alert).where(Alert.rule == "snippet_replay")).one()
        rec = session.get(AuditRecord, alert.record_seq)
        assert rec is not None and rec.action == events.AUDIO_DELIVERED and rec.target == "snippet-y"
        assert rec.seq == 4 and rec.at == alert.created_at


def test_concurrent_monitored_appends_leave_a_verifiable_log(dep):
    import threading

    from earshot.audit.checkpoints import create_checkpoint
    from earshot.audit.verify import verify_deployment

    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(15):
                emit(dep, f"user:r{k}", events.AUDIO_DELIVERED, target=f"s{k}-{i % 3}", ip=f"10.0.{k}.1")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert create_checkpoint(dep) is not None
    report = verify_deployment(dep)
    assert report.ok and report.records == 60
    # each reviewer heard each of their 3 snippets 5 times: one replay alert per reviewer and snippet
    replays = sorted((a[1], a[3]) for a in alerts(dep, "snippet_replay"))
    assert replays == sorted((f"user:r{k}", f"s{k}-{j}") for k in range(4) for j in range(3))
