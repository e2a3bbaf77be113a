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
