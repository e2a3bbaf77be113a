"""`earshot products add` and `earshot ingest`: the same intake service the HTTP API uses."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from sqlalchemy import select

from earshot.cli.common import DEFAULT, DataDir, fail
from earshot.cli.context import open_deployment
from earshot.intake.models import Product
from earshot.intake.services import RecordingMeta, create_product, receive_recording
from earshot.pipeline.decode import AudioError

products_app = typer.Typer(help="Voice products allowed to submit recordings.", no_args_is_help=True)


@products_app.command("add")
def products_add(
    name: str = typer.Argument(..., help="Product name, e.g. assistant"),
    graders: int = typer.Option(2, "--graders", min=1, max=5, help="Graders per snippet (N-way overlap)."),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Register a product and print its service token (shown once; stored only hashed)."""
    dep = open_deployment(data_dir)
    with dep.db.session() as session:
        if session.scalar(select(Product).where(Product.name == name)):
            raise fail(f"product {name!r} already exists")
        _, token = create_product(session, name, graders_per_snippet=graders)
    typer.echo(token)


@products_app.command("list")
def products_list(data_dir: DataDir = DEFAULT) -> None:
    """List products (never their tokens)."""
    dep = open_deployment(data_dir)
    with dep.db.session() as session:
        for p in session.scalars(select(Product).order_by(Product.name)):
            typer.echo(f"{p.name}\tgraders={p.graders_per_snippet}\t{'active' if p.active else 'disabled'}")


def ingest(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="Recordings."),
    customer: str = typer.Option(..., "--customer", help="The product's customer id."),
    product: str = typer.Option("cli", "--product", help="Product name (created if missing)."),
    locale: str = typer.Option("en-US", "--locale"),
    hypothesis: str | None = typer.Option(None, "--hypothesis", help="The product's own machine transcript."),
    captured_at: datetime | None = typer.Option(None, "--captured-at", help="ISO time, UTC assumed."),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Submit recordings through intake (consent, sampling, validation), then process them."""
    dep = open_deployment(data_dir)
    if captured_at is not None and captured_at.tzinfo is None:
        from datetime import UTC

        captured_at = captured_at.replace(tzinfo=UTC)
    failed = False
    for path in files:
        with dep.db.session() as session:
            prod = session.scalar(select(Product).where(Product.name == product))
            if prod is None:
                prod, _ = create_product(session, product)
            try:
                result = receive_recording(
                    dep,
                    session,
                    prod,
                    RecordingMeta(customer, locale, hypothesis, captured_at),
                    path.read_bytes(),
                    ip="cli",
                )
            except AudioError as exc:
                session.rollback()
                typer.secho(f"{path.name}: rejected ({exc.code}): {exc}", err=True, fg=typer.colors.RED)
                failed = True
                continue
        if result.recording_id:
            dep.runner.submit("process_recording", recording_id=result.recording_id)
        typer.echo(
            f"{path.name}: {result.status}" + (f" {result.recording_id}" if result.recording_id else "")
        )
    if failed:
        raise typer.Exit(2)
