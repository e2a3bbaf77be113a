"""Background jobs in the server process: signed audit checkpoints appear without anyone asking."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from earshot.audit import services as audit
from earshot.audit.checkpoints import latest_checkpoint
from earshot.web.app import create_app


def test_server_writes_checkpoints_and_sweeps(make_deployment) -> None:
    dep = make_deployment(background_jobs=True)
    with dep.db.session() as s:
        audit.record(s, actor="test", action="config.changed")
    with TestClient(create_app(dep), client=("127.0.0.1", 1)):
        deadline = time.monotonic() + 20
        cp = None
        while cp is None and time.monotonic() < deadline:
            time.sleep(0.2)
            with dep.db.session() as s:
                cp = latest_checkpoint(s)
    assert cp is not None and cp.tree_size >= 1


def test_jobs_off_when_disabled(make_deployment) -> None:
    from earshot.scheduler import start_background_jobs

    assert start_background_jobs(make_deployment(background_jobs=False)) is None


def test_media_purge_job_runs(make_deployment) -> None:
    from earshot.scheduler import purge_unused_media

    assert purge_unused_media(make_deployment()) == 0
