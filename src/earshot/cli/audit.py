"""`earshot audit verify|show|checkpoint|prove|alerts|canary|public-key`: the tamper-evident log."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path

import typer

from earshot.cli.common import DEFAULT, DataDir, fail

audit_app = typer.Typer(
    help="The tamper-evident audit log: verify, search, checkpoints, proofs, alerts.", no_args_is_help=True
)


def _open(data_dir: Path):  # noqa: ANN202 - a Deployment, imported lazily to keep the CLI fast
    if not data_dir.exists():
        raise fail(f"no deployment at {data_dir}")
    from earshot.audit.context import install
    from earshot.cli.context import open_deployment

    dep = open_deployment(data_dir)
    install(dep)
    return dep


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    from earshot.audit.services import parse_time

    try:
        return parse_time(value)
    except ValueError as exc:
        raise fail(f"not an ISO 8601 time: {value!r}") from exc


@audit_app.command("verify")
def verify(
    data_dir: DataDir = DEFAULT,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Recompute the tree from every record and check every checkpoint (database and file) and
    signature. Exit 0 only if all hold; otherwise name the first bad record."""
    from earshot.audit.verify import verify_deployment

    report = verify_deployment(_open(data_dir))
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "records": report.records,
                    "checkpoints_db": report.checkpoints_db,
                    "checkpoints_file": report.checkpoints_file,
                    "seconds": round(report.seconds, 3),
                    "first_bad_seq": report.first_bad_seq,
                    "first_bad_range": report.first_bad_range,
                    "problems": [
                        {"kind": p.kind, "seq": p.seq, "message": p.message} for p in report.problems
                    ],
                }
            )
        )
    else:
        for problem in report.problems:
            typer.echo(f"  {problem.kind}: {problem.message}", err=True)
        if report.more_problems:
            typer.echo(f"  ... and {report.more_problems} more", err=True)
        typer.echo(report.summary(), err=not report.ok)
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("show")
def show(
    actor: str | None = typer.Option(None, "--actor", help="e.g. user:<id>"),
    target: str | None = typer.Option(None, "--target", "--snippet", help="A snippet (or other) id."),
    action: str | None = typer.Option(None, "--action", "--event", help="Event type; 'audio.*' is a prefix."),
    since: str | None = typer.Option(None, "--since", help="ISO 8601 time (UTC if no zone)."),
    until: str | None = typer.Option(None, "--until", help="ISO 8601 time (UTC if no zone)."),
    limit: int = typer.Option(100, "--limit", min=1),
    after_seq: int = typer.Option(0, "--after-seq", min=0),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Show records filtered by actor, snippet/target, event type and time (oldest first)."""
    from earshot.audit.query import record_json, search_records

    dep = _open(data_dir)
    with dep.db.session() as session:
        rows = search_records(
            session,
            actor=actor,
            target=target,
            action=action,
            since=_when(since),
            until=_when(until),
            after_seq=after_seq,
            limit=limit,
        )
        for rec in rows:
            data = record_json(rec)
            if as_json:
                typer.echo(json.dumps(data, sort_keys=True))
            else:
                typer.echo(
                    f"{data['seq']:>8}  {data['at']}  {data['actor']:<40} {data['action']:<20} "
                    f"{data['target'] or '-':<34} {data['outcome']:<7} {data['ip'] or '-'} "
                    f"{json.dumps(data['details'], sort_keys=True)}"
                )


@audit_app.command("checkpoint")
def checkpoint(
    data_dir: DataDir = DEFAULT,
    force: bool = typer.Option(
        False, "--force", help="Sign even if nothing was appended since the last one."
    ),
) -> None:
    """Sign the current tree head now (database and append-only file) and print it."""
    from earshot.audit.checkpoints import create_checkpoint, latest_checkpoint

    dep = _open(data_dir)
    cp = create_checkpoint(dep, force=force)
    if cp is None:
        with dep.db.session() as session:
            cp = latest_checkpoint(session)
        if cp is None:
            raise fail("the log is empty: nothing to sign")
        typer.echo("no new records since the newest checkpoint:", err=True)
    typer.echo(json.dumps(cp.to_json(), sort_keys=True))


@audit_app.command("prove")
def prove(
    seq: int | None = typer.Option(None, "--seq", min=1, help="Inclusion proof for this record."),
    first: int | None = typer.Option(None, "--first", min=0, help="Consistency proof from this tree size."),
    tree_size: int | None = typer.Option(
        None, "--tree-size", "--second", min=0, help="Tree size to prove against (default: current)."
    ),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Print an RFC 9162 inclusion proof (--seq) or consistency proof (--first) as JSON."""
    from earshot.audit import proofs

    if (seq is None) == (first is None):
        raise fail("give exactly one of --seq (inclusion) or --first (consistency)")
    dep = _open(data_dir)
    with dep.db.session() as session:
        try:
            proof = (
                proofs.inclusion_proof(session, seq, tree_size)
                if seq is not None
                else proofs.consistency_proof(session, first or 0, tree_size)
            )
        except proofs.ProofError as exc:
            raise fail(str(exc)) from exc
    typer.echo(json.dumps(proof.to_json(), sort_keys=True))


@audit_app.command("public-key")
def public_key(data_dir: DataDir = DEFAULT) -> None:
    """Print the Ed25519 checkpoint verification key (raw, base64) for independent verifiers."""
    from earshot.audit.context import install

    keys = install(_open(data_dir)).keys
    typer.echo(
        json.dumps({"key_id": keys.key_id, "public_key": base64.b64encode(keys.public_raw()).decode()})
    )


@audit_app.command("alerts")
def alerts(
    open_only: bool = typer.Option(True, "--open/--all", help="Only unacknowledged alerts (default)."),
    limit: int = typer.Option(50, "--limit", min=1),
    data_dir: DataDir = DEFAULT,
) -> None:
    """List monitoring alerts, newest first."""
    from earshot.audit.monitoring import list_alerts

    dep = _open(data_dir)
    with dep.db.session() as session:
        for a in list_alerts(session, acknowledged=False if open_only else None, limit=limit):
            typer.echo(
                f"{a.id:>6}  {a.created_at.isoformat()}  {a.severity:<8} {a.rule:<16} {a.actor:<40} "
                f"{a.target or '-'}  {a.details}"
            )


@audit_app.command("canary")
def canary(
    snippet_id: str = typer.Argument(
        ..., help="A synthetic snippet (fake personal data) kept out of the queue."
    ),
    label: str = typer.Option("", "--label"),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Mark a snippet as a canary: any request for it raises a critical alert."""
    from earshot.audit.monitoring import register_canary

    dep = _open(data_dir)
    with dep.db.session() as session:
        register_canary(session, snippet_id, label=label, actor="cli:admin")
    typer.echo(f"canary registered: {snippet_id}")
