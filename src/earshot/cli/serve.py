"""`earshot serve`, `earshot worker` and `earshot demo`."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from sqlalchemy import func, select

from earshot.cli.common import DEFAULT, DataDir
from earshot.config import SETTINGS_FILE, load_settings, share_cores, usable_cores, write_settings_file
from earshot.deployment import Deployment

SAMPLES = Path(__file__).resolve().parent.parent / "demo" / "samples"
DEMO_CUSTOMERS = ("demo-customer-1", "demo-customer-2", "demo-customer-3")


def _serve(dep: Deployment, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    from earshot.web.app import create_app, freeze_startup_heap

    if host not in ("127.0.0.1", "::1", "localhost"):
        typer.secho("warning: binding outside loopback; put a TLS proxy in front", err=True)
    options = {"host": host, "port": port, "log_level": "warning", "server_header": False}
    if workers <= 1:
        application = create_app(dep)
        freeze_startup_heap()  # the server's start-up heap stays out of every later collection
        uvicorn.run(application, **options)  # type: ignore[arg-type]
        return
    # Several processes (one GIL each): uvicorn imports the factory in every worker, which opens
    # the deployment named by EARSHOT_DATA_DIR itself.
    os.environ["EARSHOT_DATA_DIR"] = str(dep.settings.data_dir)
    # an inline pipeline in each process gets its share of the cores (unless set explicitly)
    shared = share_cores(dep.settings, workers, usable_cores())
    os.environ["EARSHOT_ASR_THREADS"] = str(shared.asr_threads)
    dep.close()
    uvicorn.run("earshot.web.app:create_app_from_env", factory=True, workers=workers, **options)  # type: ignore[arg-type]


def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Server processes (PostgreSQL deployments; SQLite: keep 1)."
    ),
    data_dir: DataDir = DEFAULT,
) -> None:
    """Serve the reviewer UI and the API."""
    dep = Deployment.open(load_settings(data_dir))
    if workers > 1 and dep.db.url.startswith("sqlite"):
        raise typer.BadParameter("--workers > 1 needs a PostgreSQL database (database_url)")
    typer.echo(f"Earshot on http://{host}:{port}/ (data in {dep.settings.data_dir})")
    _serve(dep, host, port, workers)


def worker(
    data_dir: DataDir = DEFAULT,
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, help="Worker processes (default: one per core, cores shared out)."
    ),
) -> None:
    """Run a Celery pipeline worker (needs task_runner = "celery" and a broker)."""
    from earshot.pipeline.celery_app import run_worker

    run_worker(Deployment.open(load_settings(data_dir)), concurrency=concurrency)


def demo(
    data_dir: DataDir = DEFAULT,
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="Serve on 127.0.0.1:8000 afterwards."),
    port: int = typer.Option(8000, "--port"),
) -> None:
    """Set up an embedded deployment with sample recordings and print enrolment links."""
    from earshot.access.facilities import create_facility, find_facility
    from earshot.access.services import find_user, invite_user
    from earshot.access.vetting import KINDS, record_vetting
    from earshot.intake.models import Product, Recording
    from earshot.intake.services import RecordingMeta, create_product, receive_recording
    from earshot.privacy.services import set_consent

    settings = load_settings(data_dir)
    if not (settings.data_dir / SETTINGS_FILE).exists():
        # The demo samples every consenting customer (a setting: customers consented later too).
        # Links name localhost (not 127.0.0.1) because browsers allow passkeys only on a host name.
        write_settings_file(
            settings,
            {"sample_rate": 1.0, "daily_cap_per_customer": 1000, "base_url": f"http://localhost:{port}"},
        )
        settings = load_settings(data_dir)
    dep = Deployment.open(settings)
    typer.echo(f"Earshot demo deployment in {settings.data_dir.resolve()}")
    with dep.db.session() as session:
        product = session.scalar(select(Product).where(Product.name == "demo-assistant"))
        if product is None:
            product, _token = create_product(session, "demo-assistant", graders_per_snippet=1)
        for customer in DEMO_CUSTOMERS:
            set_consent(session, dep, customer, granted=True, source="cli", actor="cli:demo")
        already = session.scalar(select(func.count()).select_from(Recording)) or 0
        facility = find_facility(session, "Demo facility") or create_facility(
            session,
            "Demo facility",
            settings.allowed_countries[0],
            ["127.0.0.0/8", "::1/128"],
            settings=settings,
        )
        facility_id = facility.id
    if not already:
        samples = sorted(SAMPLES.glob("*.flac"))
        with typer.progressbar(samples, label="Ingesting sample recordings") as bar:
            for i, path in enumerate(bar):
                with dep.db.session() as session:
                    prod = session.scalar(select(Product).where(Product.name == "demo-assistant"))
                    result = receive_recording(
                        dep,
                        session,
                        prod,
                        RecordingMeta(DEMO_CUSTOMERS[i % len(DEMO_CUSTOMERS)]),
                        path.read_bytes(),
                        ip="cli",
                    )
                if result.recording_id:
                    dep.runner.submit("process_recording", recording_id=result.recording_id)
    from earshot.review.models import Snippet

    with dep.db.session() as session:
        queued = session.scalar(select(func.count()).select_from(Snippet).where(Snippet.status == "queued"))
        stamp = f"{session.scalar(select(func.count()).select_from(Snippet)):03d}"
        admin_link = invite_user(session, settings, f"admin+{stamp}-{_suffix()}@demo.earshot.test", "admin")
        reviewer_email = f"reviewer+{stamp}-{_suffix()}@demo.earshot.test"
        reviewer_link = invite_user(session, settings, reviewer_email, "reviewer", facility_id=facility_id)
        reviewer = find_user(session, reviewer_email)
        today = datetime.now(UTC).date()
        for kind in KINDS:  # the demo reviewer is vetted, trained and has signed the agreement
            record_vetting(
                session,
                reviewer.id,
                kind,
                completed_on=today,
                expires_on=today + timedelta(days=365),
                recorded_by="cli:demo",
                reference="demo",
            )
    typer.echo(f"{queued} snippets are waiting for review.")
    typer.echo("Single-use enrolment links (valid 24 h); open one, choose a password, scan the TOTP code:")
    typer.echo(f"  admin:    {admin_link}")
    typer.echo(f"  reviewer: {reviewer_link}")
    if serve_after:
        typer.echo(f"Serving on http://127.0.0.1:{port}/ (also http://localhost:{port}/) — Ctrl-C to stop.")
        _serve(dep, "127.0.0.1", port)


def _suffix() -> str:
    import secrets

    return secrets.token_hex(2)
