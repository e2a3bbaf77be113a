"""`earshot customers consent|erase|export ID` for the privacy role."""

from __future__ import annotations

import typer

from earshot.cli.common import DEFAULT, DataDir, fail
from earshot.cli.context import open_deployment
from earshot.privacy.services import CONSENT_TEXT_VERSION, set_consent

customers_app = typer.Typer(help="Customer rights: consent, erasure, export.", no_args_is_help=True)


@customers_app.command("consent")
def consent(
    customer_id: str = typer.Argument(..., help="The product's customer id."),
    grant: bool = typer.Option(..., "--grant/--withdraw", help="Opt in, or withdraw consent."),
    text_version: str = typer.Option(CONSENT_TEXT_VERSION, "--text-version"),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Record a customer's opt-in or withdrawal (withdrawal drops their pending snippets)."""
    dep = open_deployment(data_dir)
    with dep.db.session() as session:
        customer = set_consent(session, dep, customer_id, granted=grant, text_version=text_version,
                               source="cli", actor="cli:privacy")
        state = "granted" if customer.consented else "withdrawn"
    typer.echo(f"consent {state}")


@customers_app.command("erase")
def erase(customer_id: str = typer.Argument(...), data_dir: DataDir = DEFAULT) -> None:
    """Erase everything held about a customer by destroying their data key (crypto-shredding)."""
    from earshot.privacy.erasure import erase_customer, purge_blobs

    dep = open_deployment(data_dir)
    with dep.db.session() as session:
        report = erase_customer(session, dep, customer_id, actor="cli:privacy")
    if report is None:
        raise fail("no such customer")
    purge_blobs(dep, report.blob_ids)
    typer.echo(f"erased: {report.snippets} snippets, {report.recordings} recordings")


@customers_app.command("export")
def export(customer_id: str = typer.Argument(...), data_dir: DataDir = DEFAULT) -> None:
    """Print, as JSON, what Earshot holds about a customer (GDPR Art. 15/20)."""
    import json

    from earshot.privacy.export import customer_export

    dep = open_deployment(data_dir)
    with dep.db.session() as session:
        doc = customer_export(session, dep, customer_id, actor="cli:privacy")
    if doc is None:
        raise fail("no such customer")
    typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
