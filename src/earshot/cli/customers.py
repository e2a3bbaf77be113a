"""`earshot customers consent|erase|export|tombstones` for the privacy role."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

from earshot.cli.common import DEFAULT, DataDir, fail
from earshot.cli.context import open_deployment

customers_app = typer.Typer(help="Customer rights: consent, erasure, export.", no_args_is_help=True)


def _print_json(doc: object) -> None:
    typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))


@customers_app.command("consent")
def consent(
    customer_id: str = typer.Argument(..., help="The product's customer id."),
    grant: bool | None = typer.Option(
        None, "--grant/--withdraw", help="Opt in, or withdraw consent. Without either: show the state."
    ),
    text_version: str | None = typer.Option(
        None, "--text-version", help="Version of the consent text (default: the configured one)."
    ),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Record a customer's opt-in or withdrawal, or show their consent state and history (JSON)."""
    from earshot.privacy.services import consent_state, set_consent

    dep = open_deployment(data_dir)
    with dep.db.session() as session:
        if grant is not None:
            set_consent(
                session,
                dep,
                customer_id,
                granted=grant,
                text_version=text_version,
                source="cli",
                actor="cli:privacy",
            )
            session.flush()
        state = consent_state(session, dep, customer_id)
    _print_json(state.to_json())


@customers_app.command("erase")
def erase(
    customer_id: str = typer.Argument(..., help="The product's customer id."),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Erase everything held about a customer: destroy their data key (crypto-shredding), then purge.

    Prints the erasure receipt as JSON, with how long each step took.
    """
    from earshot.privacy.erasure import erase_customer, purge_erasure

    dep = open_deployment(data_dir)
    started = time.perf_counter()
    with dep.db.session() as session:
        report = erase_customer(session, dep, customer_id, actor="cli:privacy", source="cli")
    shredded = time.perf_counter()
    if report is None:
        raise fail("no such customer (nothing is held, or already erased)")
    final = purge_erasure(dep, report.erasure_id)
    purged = time.perf_counter()
    doc = (final or report).to_json()
    doc["timings_s"] = {"shred": round(shredded - started, 4), "purge": round(purged - shredded, 4)}
    _print_json(doc)


@customers_app.command("export")
def export(
    customer_id: str = typer.Argument(..., help="The product's customer id."),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Print, as JSON, what Earshot holds about a customer (GDPR Art. 15/20)."""
    from earshot.privacy.export import customer_export

    dep = open_deployment(data_dir)
    with dep.db.session() as session:
        doc = customer_export(session, dep, customer_id, actor="cli:privacy")
    _print_json(doc)


@customers_app.command("tombstones")
def tombstones(
    out: Path = typer.Argument(Path("-"), help="Output JSONL file ('-' for stdout)."),
    since: str | None = typer.Option(
        None, "--since", help="Only tombstones written after this ISO 8601 time."
    ),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Ids of deleted snippets (erasure, retention, withdrawal): drop them from exported datasets."""
    from earshot.audit.services import parse_time
    from earshot.privacy.tombstones import write_tombstones

    try:
        when = parse_time(since) if since else None
    except ValueError:
        raise fail("--since must be an ISO 8601 time") from None
    dep = open_deployment(data_dir)
    with dep.db.session() as session:
        if str(out) == "-":
            count = write_tombstones(session, sys.stdout, since=when)
        else:
            with out.open("w", encoding="utf-8") as fh:
                count = write_tombstones(session, fh, since=when)
    typer.echo(f"{count} tombstones", err=True)
