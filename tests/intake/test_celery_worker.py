"""Production mode: intake queues processing on RabbitMQ and a real Celery worker does it."""

from __future__ import annotations

import os
import secrets
import time

import pytest
from sqlalchemy import func, select

from earshot.intake.models import Recording
from earshot.intake.services import RecordingMeta, create_product, receive_recording
from earshot.privacy.services import set_consent
from earshot.review.models import Snippet
from tests.conftest import espeak

RABBIT_ENV = "EARSHOT_TEST_RABBITMQ_URL"


@pytest.mark.slow
def test_worker_processes_queued_recording(make_deployment) -> None:
    broker = os.environ.get(RABBIT_ENV)
    if not broker:
        pytest.skip(f"needs {RABBIT_ENV} (set by .ci/run)")
    from celery.contrib.testing.worker import start_worker

    from earshot.pipeline.celery_app import CeleryRunner, bind_deployment

    dep = make_deployment(
        sample_rate=1.0,
        task_runner="celery",
        celery_broker_url=broker,
        celery_queue="earshot-test-" + secrets.token_hex(4),
    )
    assert isinstance(dep.runner, CeleryRunner)
    with dep.db.session() as s:
        product, _ = create_product(s, "assistant")
        set_consent(s, dep, "c1", granted=True)
        result = receive_recording(
            dep, s, product, RecordingMeta("c1"), espeak("please turn off the lights in the kitchen")
        )
    dep.runner.submit("process_recording", recording_id=result.recording_id)
    app = bind_deployment(dep)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        deadline = time.monotonic() + 120
        status = "pending"
        while time.monotonic() < deadline and status == "pending":
            time.sleep(0.5)
            with dep.db.session() as s:
                status = s.get(Recording, result.recording_id).status
    assert status == "processed"
    with dep.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Snippet)) >= 1
        assert s.get(Recording, result.recording_id).raw_blob_id is None


@pytest.mark.slow
def test_earshot_worker_runs_one_process_per_core(make_deployment, tmp_path) -> None:
    """`earshot worker` as an operator starts it: prefork, one process per core, models loaded in
    each child after the fork, database connections not shared across the fork."""
    broker = os.environ.get(RABBIT_ENV)
    if not broker:
        pytest.skip(f"needs {RABBIT_ENV} (set by .ci/run)")
    import signal
    import subprocess
    import sys
    from pathlib import Path

    queue = "earshot-test-" + secrets.token_hex(4)
    dep = make_deployment(sample_rate=1.0, task_runner="celery", celery_broker_url=broker, celery_queue=queue)
    ids = []
    with dep.db.session() as s:
        product, _ = create_product(s, "assistant")
        set_consent(s, dep, "c1", granted=True)
        for text in ("please turn off the lights in the kitchen", "what is the weather like tomorrow",
                     "play some music in the living room"):  # fmt: skip
            ids.append(receive_recording(dep, s, product, RecordingMeta("c1"), espeak(text)).recording_id)
    for rid in ids:
        dep.runner.submit("process_recording", recording_id=rid)
    env = {
        **os.environ,
        "EARSHOT_DATA_DIR": str(dep.settings.data_dir),
        "EARSHOT_TASK_RUNNER": "celery",
        "EARSHOT_CELERY_BROKER_URL": broker,
        "EARSHOT_CELERY_QUEUE": queue,
        "EARSHOT_BACKGROUND_JOBS": "false",
    }
    if dep.settings.database_url:
        env["EARSHOT_DATABASE_URL"] = dep.settings.database_url
    log = tmp_path / "worker.log"
    earshot = Path(sys.executable).with_name("earshot")
    with log.open("wb") as out:
        proc = subprocess.Popen([str(earshot), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            statuses: list[str] = []
            while time.monotonic() < deadline:
                time.sleep(0.5)
                with dep.db.session() as s:
                    statuses = [s.get(Recording, rid).status for rid in ids]
                if "pending" not in statuses or proc.poll() is not None:
                    break
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    text = log.read_text(errors="replace")
    cores = len(os.sched_getaffinity(0))
    assert statuses == ["processed"] * 3, text[-3000:]
    assert f"concurrency: {cores} (" in text
    assert "Traceback" not in text, text[-3000:]
