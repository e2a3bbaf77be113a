"""The privacy officer's commands: consent, export, erase, tombstones, retention run, report processing."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from earshot.cli.customers import customers_app
from earshot.cli.privacy_ops import report_app, retention_app
from earshot.deployment import Deployment
from tests.privacy import helpers as h


def _runner(dep: Deployment) -> CliRunner:
    """A runner whose commands open the same database as `dep` (PostgreSQL runs pass it by env)."""
    url = dep.settings.database_url
    return CliRunner(env={"EARSHOT_DATABASE_URL": url} if url else None)


def test_customer_commands(deployment: Deployment) -> None:
    data = ["--data-dir", str(deployment.settings.data_dir)]
    runner = _runner(deployment)
    with deployment.db.session() as s:
        prod, _ = h.product(s)
        rec = h.recording(s, deployment, prod, "c1")
        snippet_id = h.snippet(s, deployment, rec, text="hello there").id
    shown = runner.invoke(customers_app, ["consent", "c1", *data])
    assert shown.exit_code == 0, shown.output
    state = json.loads(shown.stdout)
    assert state["consented"] and state["history"][0]["at"]

    exported = runner.invoke(customers_app, ["export", "c1", *data])
    assert exported.exit_code == 0, exported.output
    doc = json.loads(exported.stdout)
    assert [x["machine_transcript"] for x in doc["snippets"]] == ["hello there"]

    erased = runner.invoke(customers_app, ["erase", "c1", *data])
    assert erased.exit_code == 0, erased.output
    receipt = json.loads(erased.stdout)
    assert receipt["status"] == "purged" and receipt["snippets"] == 1 and "shred" in receipt["timings_s"]
    assert runner.invoke(customers_app, ["erase", "c1", *data]).exit_code == 1
    assert json.loads(runner.invoke(customers_app, ["export", "c1", *data]).stdout)["snippets"] == []

    tombs = runner.invoke(customers_app, ["tombstones", "-", *data])
    assert tombs.exit_code == 0
    assert json.loads(tombs.stdout.splitlines()[0])["snippet_id"] == snippet_id

    withdrawn = runner.invoke(customers_app, ["consent", "c2", "--withdraw", *data])
    assert json.loads(withdrawn.stdout)["consented"] is False
    granted = runner.invoke(customers_app, ["consent", "c2", "--grant", "--text-version", "v9", *data])
    assert json.loads(granted.stdout)["text_version"] == "v9"


def test_retention_and_report_commands(deployment: Deployment) -> None:
    data = ["--data-dir", str(deployment.settings.data_dir)]
    runner = _runner(deployment)
    swept = runner.invoke(retention_app, ["run", "--as-of", "2030-01-01T00:00:00Z", *data])
    assert swept.exit_code == 0, swept.output
    assert json.loads(swept.stdout)["as_of"].startswith("2030-01-01")
    assert runner.invoke(retention_app, ["run", "--as-of", "soon", *data]).exit_code == 1
    report = runner.invoke(report_app, ["processing", *data])
    assert report.exit_code == 0 and "Art. 30" in report.stdout
