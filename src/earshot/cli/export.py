"""`earshot export`: the graded dataset, for the admin only (pseudonymous, no customer ids)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from earshot.cli.common import DEFAULT, DataDir
from earshot.cli.context import open_deployment
from earshot.review.services import export_jsonl


class Format(StrEnum):
    jsonl = "jsonl"


def export(
    out: Path = typer.Argument(..., help="Output file ('-' for stdout)."),
    fmt: Format = typer.Option(Format.jsonl, "--format", help="jsonl"),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Export graded snippets (transcripts, grades; never audio or customer ids) and OUT.erased.jsonl."""
    from earshot.privacy.tombstones import write_tombstones

    dep = open_deployment(data_dir)
    with dep.db.session() as session:
        if str(out) == "-":
            import sys

            count = export_jsonl(session, dep, sys.stdout)
            typer.echo(f"exported {count} snippets", err=True)
            return
        with out.open("w", encoding="utf-8") as fh:
            count = export_jsonl(session, dep, fh)
        # Erased or withdrawn snippets: consumers of earlier exports must drop these ids.
        erased_path = out.with_name(out.name + ".erased.jsonl")
        with erased_path.open("w", encoding="utf-8") as fh:
            erased = write_tombstones(session, fh)
    typer.echo(f"exported {count} snippets; {erased} erased ids in {erased_path.name}", err=True)
