"""`earshot trace FILE`: name the delivery (reviewer, snippet, time) a leaked recording came from.

FILE is the leaked copy the investigator holds; it is decoded in memory and never written anywhere.
Exit status: 0 when a delivery is named, 1 when none matched, 2 when FILE is not usable audio.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer

from earshot.cli.common import DEFAULT, DataDir, fail
from earshot.cli.context import open_deployment

NO_MATCH_EXIT = 1
BAD_AUDIO_EXIT = 2


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def trace(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="The leaked recording, in any common audio format."),
    data_dir: DataDir = DEFAULT,
    since: datetime | None = typer.Option(None, "--since", help="Only deliveries at or after (UTC)."),
    until: datetime | None = typer.Option(None, "--until", help="Only deliveries at or before (UTC)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check FILE's watermark against every delivery and name the one it came from, if any."""
    from earshot.pipeline.decode import AudioError, decode_audio
    from earshot.review.watermark_trace import trace_audio

    try:
        audio = decode_audio(file.read_bytes())
    except AudioError as exc:
        raise fail(f"{file.name}: {exc}", BAD_AUDIO_EXIT) from None
    dep = open_deployment(data_dir)
    try:
        with dep.db.session() as session:
            report = trace_audio(session, dep, audio, since=_utc(since), until=_utc(until))
    finally:
        dep.close()

    found = [report.match, *report.also] if report.match else []
    if as_json:
        typer.echo(json.dumps({
            "matched": bool(found),
            "candidates": report.candidates,
            "duration_s": round(report.duration_s, 3),
            "best_z": report.best_z,
            "threshold_z": round(report.threshold_z, 2),
            "deliveries": [
                {
                    "delivery_id": d.delivery_id,
                    "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
                    "reviewer_id": d.reviewer_id,
                    "snippet_id": d.snippet_id,
                    "assignment_id": d.assignment_id,
                    "ip": d.ip,
                    "z": round(d.z, 2),
                    "false_match_probability": d.false_match_probability,
                    "confidence": d.confidence,
                }
                for d in found
            ],
        }, indent=2))
    else:
        for d in found:
            when = d.delivered_at.isoformat() if d.delivered_at else "?"
            typer.echo(f"delivery {d.delivery_id}")
            typer.echo(f"  delivered at  {when}")
            typer.echo(f"  reviewer      {d.reviewer_id}")
            typer.echo(f"  snippet       {d.snippet_id}")
            typer.echo(f"  assignment    {d.assignment_id}")
            typer.echo(f"  from address  {d.ip or '?'}")
            typer.echo(f"  score         z = {d.z:.1f} (needed {report.threshold_z:.1f}); "
                       f"chance of a wrong match <= {d.false_match_probability:.1e}")
        if not found:
            best = f"{report.best_z:.1f}" if report.best_z is not None else "n/a"
            typer.echo(f"no delivery matched: best score z = {best}, needed {report.threshold_z:.1f}, "
                       f"{report.candidates} deliveries checked, {report.duration_s:.1f} s of audio")
        else:
            typer.echo(f"checked {report.candidates} deliveries, {report.duration_s:.1f} s of audio")
    if not found:
        raise typer.Exit(NO_MATCH_EXIT)
