"""The `earshot` command. Each domain contributes its commands from its own module."""

from __future__ import annotations

import typer

from earshot.cli import deid as deid_cmds

app = typer.Typer(
    name="earshot",
    help="Earshot: human review of de-identified voice snippets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

app.command("deid")(deid_cmds.deid)


if __name__ == "__main__":  # pragma: no cover
    app()
