"""`earshot audit show|checkpoint|verify|canary` as an operator uses them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from earshot.audit import events, services

from .conftest import run_cli


def populate(dep, clock) -> None:
    plan = [
        (datetime(2026, 3, 4, 9, 0, tzinfo=UTC), "user:a", events.TASK_ASSIGNED, "snip-1"),
        (datetime(2026, 3, 4, 9, 1, tzinfo=UTC), "user:a", events.AUDIO_DELIVERED, "snip-1"),
        (datetime(2026, 3, 4, 9, 2, tzinfo=UTC), "user:a", events.AUDIO_PLAYED, "snip-1"),
        (datetime(2026, 3, 4, 11, 0, tzinfo=UTC), "user:b", events.AUDIO_DELIVERED, "snip-2"),
        (datetime(2026, 3, 5, 9, 0, tzinfo=UTC), "user:b", events.GRADE_SUBMITTED, "snip-2"),
    ]
    for at, actor, action, target in plan:
        clock.set(at)
        with dep.db.session() as session:
            services.record(session, actor=actor, action=action, target=target, ip="10.0.0.1", monitor=False)


def shown(dep, *args) -> list[dict]:
    result = run_cli(dep, "show", "--json", *args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_show_filters_by_actor_snippet_event_and_time(dep, clock):
    populate(dep, clock)
    assert [r["seq"] for r in shown(dep)] == [1, 2, 3, 4, 5]
    assert [r["seq"] for r in shown(dep, "--actor", "user:b")] == [4, 5]
    assert [r["seq"] for r in shown(dep, "--snippet", "snip-1")] == [1, 2, 3]
    assert [r["seq"] for r in shown(dep, "--event", "audio.*")] == [2, 3, 4]
    assert [r["seq"] for r in shown(dep, "--event", events.AUDIO_DELIVERED, "--actor", "user:a")] == [2]
    assert [r["seq"] for r in shown(dep, "--since", "2026-03-04T10:00", "--until", "2026-03-05")] == [4]
    assert [r["seq"] for r in shown(dep, "--after-seq", "3", "--limit", "1")] == [4]
    record = shown(dep, "--snippet", "snip-2", "--event", events.GRADE_SUBMITTED)[0]
    assert record["at"] == "2026-03-05T09:00:00.000000Z" and record["ip"] == "10.0.0.1"
    text = run_cli(dep, "show", "--actor", "user:a").output
    assert "audio.delivered" in text and "user:b" not in text
    assert run_cli(dep, "show", "--since", "yesterday").exit_code != 0


def test_checkpoint_then_verify(dep, clock):
    populate(dep, clock)
    result = run_cli(dep, "checkpoint")
    assert result.exit_code == 0
    cp = json.loads(result.output)
    assert cp["tree_size"] == 5 and len(bytes.fromhex(cp["root_hash"])) == 32
    again = run_cli(dep, "checkpoint")
    assert again.exit_code == 0 and "no new records" in again.output
    report = json.loads(run_cli(dep, "verify", "--json").output)
    assert report["ok"] and report["records"] == 5 and report["checkpoints_file"] == 1


def test_canary_command_marks_a_snippet(dep, clock):
    result = run_cli(dep, "canary", "snip-canary", "--label", "synthetic")
    assert result.exit_code == 0
    with dep.db.session() as session:
        services.record(session, actor="user:a", action=events.AUDIO_DELIVERED, target="snip-canary")
    assert "canary" in run_cli(dep, "alerts").output


def test_commands_refuse_a_missing_deployment(tmp_path):
    from typer.testing import CliRunner

    from earshot.cli.audit import audit_app

    result = CliRunner().invoke(audit_app, ["verify", "--data-dir", str(tmp_path / "nowhere")])
    assert result.exit_code != 0 and not (tmp_path / "nowhere").exists()
