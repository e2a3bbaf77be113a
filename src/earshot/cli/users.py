"""`earshot users ...`: accounts, facilities and vetting, for the administrator at the server's console.

Registered in `earshot.cli.main` as `earshot users`. Output never contains passwords or codes; the only
secret printed is the single-use enrolment link of `invite`, which is meant to be handed over.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import typer

from earshot.cli.common import DEFAULT, DataDir, fail
from earshot.cli.context import open_deployment

users_app = typer.Typer(help="Staff accounts, facilities and vetting.", no_args_is_help=True)
facilities_app = typer.Typer(
    help="Facilities: where reviewers and leads may work from.", no_args_is_help=True
)
users_app.add_typer(facilities_app, name="facilities")

CLI_ACTOR = "cli:admin"


@users_app.command("invite")
def invite(
    email: str = typer.Argument(..., help="The person's work e-mail (one person, one account)."),
    role: str = typer.Option(..., "--role", help="reviewer | lead | privacy | admin"),
    facility: str | None = typer.Option(
        None, "--facility", help="Facility name or id (reviewers and leads)."
    ),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Create an account and print its single-use enrolment link (expires after `enrol_link_ttl_hours`)."""
    from earshot.access.services import AccessError, invite_user

    dep = open_deployment(data_dir)
    try:
        with dep.db.session() as s:
            url = invite_user(s, dep.settings, email, role, facility, actor=CLI_ACTOR)
    except AccessError as exc:
        raise fail(exc.message) from None
    typer.echo(url)


@users_app.command("list")
def list_users(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Everyone, with role, status, facility, vetting expiry and what blocks them from work."""
    from earshot.access.services import account_overview

    dep = open_deployment(data_dir)
    with dep.db.session() as s:
        rows = account_overview(s)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no accounts")
        return
    for r in rows:
        state = "BLOCKED: " + "; ".join(r["blocked"]) if r["blocked"] else "ok"
        typer.echo(f"{r['email']:<32} {r['role']:<9} {r['status']:<9} {r['facility'] or '-':<20} {state}")


def _user_id(session: object, ref: str) -> str:
    from earshot.access.services import find_user

    user = find_user(session, ref)  # type: ignore[arg-type]
    if user is None:
        raise fail("no such user")
    return user.id


@users_app.command("disable")
def disable(
    user: str = typer.Argument(..., help="E-mail or id."),
    reason: str = typer.Option("", "--reason", help="Why (shown in `users list`)."),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Disable an account; all its sessions end at once."""
    from earshot.access.services import AccessError, disable_user

    dep = open_deployment(data_dir)
    try:
        with dep.db.session() as s:
            disable_user(s, _user_id(s, user), actor=CLI_ACTOR, reason=reason)
    except AccessError as exc:
        raise fail(exc.message) from None
    typer.echo("disabled")


@users_app.command("set-role")
def set_role(
    user: str = typer.Argument(..., help="E-mail or id."),
    role: str = typer.Argument(..., help="reviewer | lead | privacy | admin"),
    facility: str | None = typer.Option(
        None, "--facility", help="Facility name or id (reviewers and leads)."
    ),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Change a role; all the person's sessions end."""
    from earshot.access.services import AccessError
    from earshot.access.services import set_role as do_set_role

    dep = open_deployment(data_dir)
    try:
        with dep.db.session() as s:
            do_set_role(s, _user_id(s, user), role, actor=CLI_ACTOR, facility_id=facility)
    except AccessError as exc:
        raise fail(exc.message) from None
    typer.echo(f"role set to {role}")


@users_app.command("unlock")
def unlock(
    email: str = typer.Argument(..., help="E-mail whose sign-in lock-out to clear."),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Clear an account's sign-in lock-out (after checking with the person)."""
    from earshot.access import throttle
    from earshot.access.services import throttle_key
    from earshot.audit.services import record

    dep = open_deployment(data_dir)
    with dep.db.session() as s:
        throttle.unlock(s, throttle.account_key(throttle_key(dep.keys), email))
        record(
            s, actor=CLI_ACTOR, action="user.unlocked", target=_user_id(s, email) if "@" in email else None
        )
    typer.echo("unlocked")


@users_app.command("vet")
def vet(
    user: str = typer.Argument(..., help="E-mail or id."),
    kind: str = typer.Argument(..., help="background_check | training | confidentiality"),
    completed: str = typer.Option(None, "--completed", help="YYYY-MM-DD (default today)."),
    expires: str = typer.Option(None, "--expires", help="YYYY-MM-DD (default one year after completion)."),
    reference: str | None = typer.Option(None, "--reference", help="Document or case reference."),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Record a completed vetting step with its expiry; all three are needed before any task."""
    from earshot.access.vetting import VettingError, record_vetting
    from earshot.audit.services import record

    try:
        done = date.fromisoformat(completed) if completed else date.today()
        until = date.fromisoformat(expires) if expires else done + timedelta(days=365)
    except ValueError:
        raise fail("dates must be YYYY-MM-DD") from None
    dep = open_deployment(data_dir)
    try:
        with dep.db.session() as s:
            uid = _user_id(s, user)
            record_vetting(
                s, uid, kind, completed_on=done, expires_on=until, recorded_by=CLI_ACTOR, reference=reference
            )
            record(
                s,
                actor=CLI_ACTOR,
                action="user.vetting_recorded",
                target=uid,
                details={"kind": kind, "expires_on": until.isoformat()},
            )
    except VettingError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{kind} recorded, expires {until.isoformat()}")


@facilities_app.command("add")
def facility_add(
    name: str = typer.Argument(..., help="Facility name."),
    country: str = typer.Option(..., "--country", help="ISO country code; must be an allowed country."),
    network: list[str] = typer.Option(..., "--network", help="CIDR the facility connects from (repeatable)."),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Create a facility (refused outside the allowed countries of processing)."""
    from earshot.access.facilities import FacilityError, create_facility
    from earshot.audit.services import record

    dep = open_deployment(data_dir)
    try:
        with dep.db.session() as s:
            fac = create_facility(s, name, country, network, settings=dep.settings)
            record(
                s, actor=CLI_ACTOR, action="facility.created", target=fac.id, details={"country": fac.country}
            )
            fid = fac.id
    except FacilityError as exc:
        raise fail(str(exc)) from None
    typer.echo(fid)


@facilities_app.command("list")
def facility_list(data_dir: DataDir = DEFAULT) -> None:
    """Facilities with their country and networks."""
    from sqlalchemy import select

    from earshot.access.models import Facility

    dep = open_deployment(data_dir)
    with dep.db.session() as s:
        for f in s.scalars(select(Facility).order_by(Facility.name)):
            typer.echo(f"{f.name:<24} {f.country}  {f.networks}  id={f.id}")
