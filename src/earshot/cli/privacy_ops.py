"""`earshot retention run` (the storage-limitation sweeper) and `earshot report processing` (Art. 30)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from earshot.cli.common import DEFAULT, DataDir, fail
from earshot.cli.context import open_deployment

retention_app = typer.Typer(help="Retention: delete what is past its time.", no_args_is_help=True)
report_app = typer.Typer(help="Compliance reports.", no_args_is_help=True)


@retention_app.callback()
def _retention() -> None:
    """Retention (GDPR Art. 5(1)(e)): delete what is past its time."""


@report_app.callback()
def _report() -> None:
    """Compliance reports (GDPR Art. 30)."""


@retention_app.command("run")
def run(
    as_of: str | None = typer.Option(
        None, "--as-of", help="Sweep as if it were this ISO 8601 time (default: now)."
    ),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Delete snippet audio graded long enough ago, raw audio no longer needed, and everything past the
    maximum age; finish interrupted erasures. Prints what was deleted (JSON); each deletion is audited."""
    from earshot.audit.services import parse_time
    from earshot.privacy.retention import run_retention

    try:
        now = parse_time(as_of) if as_of else None
    except ValueError:
        raise fail("--as-of must be an ISO 8601 time") from None
    report = run_retention(open_deployment(data_dir), now=now)
    typer.echo(json.dumps(report.to_json(), indent=2))


@report_app.command("processing")
def processing(
    out: Path = typer.Option(Path("-"), "--out", "-o", help="Markdown file ('-' for stdout)."),
    data_dir: DataDir = DEFAULT,
) -> None:
    """The GDPR Art. 30 record of processing activities, from the live configuration, as Markdown."""
    from earshot.privacy.report import processing_record

    dep = open_deployment(data_dir)
    with dep.db.session() as session:
        text = processing_record(session, dep)
    if str(out) == "-":
        typer.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
