"""The app's process-level set-up: the start-up heap frozen, the multi-process factory."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from earshot.cli.main import app as cli
from earshot.web.app import create_app_from_env, freeze_startup_heap


def test_freeze_moves_the_startup_heap_out_of_the_collector() -> None:
    try:
        kept = [object() for _ in range(1000)]
        frozen = freeze_startup_heap()
        assert frozen >= 1000 and gc.get_freeze_count() > 0
        assert kept  # still alive and usable
    finally:
        gc.unfreeze()


def test_factory_opens_the_deployment_named_by_the_environment(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("EARSHOT_DATA_DIR", str(tmp_path / "data"))
    application = create_app_from_env()
    dep = application.state.deployment
    try:
        assert dep.settings.data_dir == tmp_path / "data"
        assert gc.get_freeze_count() > 0  # the worker's start-up heap is frozen
        with TestClient(application, client=("127.0.0.1", 50000)) as client:
            assert client.get("/api/v1/health").status_code == 200
    finally:
        gc.unfreeze()
        dep.close()


def test_several_workers_need_postgresql(tmp_path) -> None:  # noqa: ANN001
    result = CliRunner().invoke(cli, ["serve", "--workers", "2", "--data-dir", str(tmp_path / "d")])
    assert result.exit_code != 0 and "PostgreSQL" in result.output
