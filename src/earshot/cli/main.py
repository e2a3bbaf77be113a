"""The `earshot` command. Each domain contributes its commands from its own module."""

from __future__ import annotations

import typer

from earshot.cli import customers, deid, export, intake, privacy_ops, serve, trace, users
from earshot.cli.audit import audit_app
from earshot.cli.eval import eval_cmd

app = typer.Typer(
    name="earshot",
    help="Earshot: human review of de-identified voice snippets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.command("demo")(serve.demo)
app.command("serve")(serve.serve)
app.command("worker")(serve.worker)
app.command("ingest")(intake.ingest)
app.command("deid")(deid.deid)
app.command("export")(export.export)
app.command("eval")(eval_cmd)
app.command("trace")(trace.trace)
app.add_typer(intake.products_app, name="products")
app.add_typer(customers.customers_app, name="customers")
app.add_typer(users.users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(privacy_ops.retention_app, name="retention")
app.add_typer(privacy_ops.report_app, name="report")


if __name__ == "__main__":  # pragma: no cover
    app()
