"""The production task runner: Celery workers on RabbitMQ, late acks, one task at a time per process.

Tasks carry ids only (never audio or text) and are idempotent, so a redelivered task after a
worker crash redoes or skips its work safely.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from celery import Celery

from earshot.config import Settings, share_cores
from earshot.pipeline.tasks import registry

if TYPE_CHECKING:
    from earshot.deployment import Deployment

_deployment: Deployment | None = None


def make_celery(broker_url: str, queue: str = "earshot") -> Celery:
    app = Celery("earshot", broker=broker_url)
    app.conf.update(
        task_default_queue=queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    for name in registry():
        app.task(name=f"earshot.{name}", bind=False)(_make_task(name))
    return app


def _make_task(name: str):  # noqa: ANN202 - Celery wants a plain function
    def run(**kwargs: str) -> None:
        if _deployment is None:
            raise RuntimeError("worker started without a deployment")
        registry()[name](_deployment, **kwargs)

    run.__name__ = name
    return run


class CeleryRunner:
    """Queues tasks on the broker; `earshot worker` processes them."""

    def __init__(self, deployment: Deployment) -> None:
        self.app = make_celery(deployment.settings.celery_broker_url, deployment.settings.celery_queue)

    def submit(self, name: str, **kwargs: str) -> None:
        self.app.send_task(f"earshot.{name}", kwargs=kwargs)


def bind_deployment(deployment: Deployment) -> Celery:
    """Make tasks in this process run against `deployment`; returns the Celery app."""
    global _deployment
    _deployment = deployment
    return make_celery(deployment.settings.celery_broker_url, deployment.settings.celery_queue)


def worker_layout(settings: Settings, concurrency: int | None, cores: int) -> tuple[Settings, int]:
    """How many worker processes to run (default: one per core) and the settings each runs with
    (`config.share_cores`: the cores shared out unless `asr_threads` was set). Measured on 2 cores
    (bench/deid_workers.py, one-snippet recordings): 2 processes of 1 thread 45.9x real time,
    2 of 2 threads 40.6x, 1 process of 2 threads 27.4x.
    """
    processes = concurrency or max(1, cores)
    return share_cores(settings, processes, cores), processes


def run_worker(deployment: Deployment, *, concurrency: int | None = None) -> None:
    """Serve the queue with `concurrency` prefork processes (default: one per core)."""
    from celery.signals import worker_process_init

    from earshot.config import usable_cores
    from earshot.scheduler import start_background_jobs

    deployment.settings, processes = worker_layout(deployment.settings, concurrency, usable_cores())

    def fresh_connections(**_: object) -> None:
        # A forked child must not use the parent's pooled connections (SQLAlchemy's advice for
        # multiprocessing): drop them from the child's pool without closing the parent's.
        deployment.db.engine.dispose(close=False)

    worker_process_init.connect(fresh_connections, weak=False)
    app = bind_deployment(deployment)
    start_background_jobs(deployment)
    pool = "solo" if processes == 1 else "prefork"
    app.worker_main(["worker", "--loglevel=INFO", f"--concurrency={processes}", f"--pool={pool}"])
