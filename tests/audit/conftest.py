"""Fixtures for the audit tests: an installed deployment (SQLite and PostgreSQL) and a controllable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from earshot.audit import services
from earshot.audit.context import install
from earshot.deployment import Deployment


@pytest.fixture
def dep(make_deployment) -> Deployment:
    """A fresh deployment with the audit log installed (interval checkpoints effectively off)."""
    deployment = make_deployment()
    ctx = install(deployment)
    ctx.every_records = 10**9
    ctx.every_seconds = 10**9
    return deployment


class Clock:
    """The audit log's clock, moved by the test."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Records get timestamps from this clock (starting on a Wednesday at 10:00 UTC)."""
    fake = Clock(datetime(2026, 3, 4, 10, 0, tzinfo=UTC))
    monkeypatch.setattr(services, "clock", fake)
    return fake


def fill(deployment: Deployment, n: int, *, actor: str = "user:r1", per_tx: int = 25) -> None:
    """Append n ordinary events, a few per transaction."""
    done = 0
    while done < n:
        with deployment.db.session() as session:
            for _ in range(min(per_tx, n - done)):
                done += 1
                services.record(
                    session,
                    actor=actor,
                    action="task.assigned",
                    target=f"snip{done}",
                    ip="10.1.2.3",
                    details={"n": done},
                    monitor=False,
                )


def audit_app_for(deployment: Deployment):  # noqa: ANN201
    """A FastAPI app with just the audit router (the product app includes it the same way)."""
    from fastapi import FastAPI

    from earshot.audit import views

    app = FastAPI()
    app.state.deployment = deployment
    app.include_router(views.router)
    return app


def run_cli(deployment: Deployment, *args: str):  # noqa: ANN201
    """`earshot audit ARGS --data-dir D` against this deployment (its database too)."""
    from typer.testing import CliRunner

    from earshot.cli.audit import audit_app

    env = (
        {"EARSHOT_DATABASE_URL": deployment.settings.database_url} if deployment.settings.database_url else {}
    )
    return CliRunner().invoke(audit_app, [*args, "--data-dir", str(deployment.settings.data_dir)], env=env)
