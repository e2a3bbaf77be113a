"""Periodic background jobs of a server or worker process: audit sequencing and checkpoints, retention
sweeps."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from earshot.deployment import Deployment

log = logging.getLogger("earshot.scheduler")


@dataclass
class Job:
    name: str
    interval_s: float
    run: Callable[[Deployment], object]
    next_at: float = 0.0


class BackgroundJobs(threading.Thread):
    """One daemon thread running each job at its interval; a failing job is logged (type only) and retried."""

    def __init__(self, deployment: Deployment, jobs: list[Job]) -> None:
        super().__init__(name="earshot-jobs", daemon=True)
        self.deployment = deployment
        self.jobs = jobs
        self._stop_event = threading.Event()
        self.runs: dict[str, int] = {job.name: 0 for job in jobs}

    def run(self) -> None:
        while not self._stop_event.is_set():
            now = time.monotonic()
            for job in self.jobs:
                if now >= job.next_at:
                    try:
                        job.run(self.deployment)
                    except Exception as exc:
                        log.error("background job %s failed: %s", job.name, type(exc).__name__)
                    self.runs[job.name] += 1
                    job.next_at = time.monotonic() + job.interval_s
            self._stop_event.wait(min(job.next_at for job in self.jobs) - time.monotonic())

    def stop(self, timeout: float = 30.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)


def purge_unused_media(deployment: Deployment) -> int:
    """Drop single-use media tokens that expired unused (they never carried audio)."""
    from earshot.review.media import purge_unused

    with deployment.db.session() as session:
        return purge_unused(session)


def sequence_audit_events(deployment: Deployment) -> int:
    """Move pending audit events into the tree (PostgreSQL): a safety net for events whose commit
    happened in a process that ended before sequencing them; commits normally sequence at once."""
    from earshot.audit.services import sequence_pending

    return sequence_pending(deployment.db.engine)


def default_jobs(deployment: Deployment) -> list[Job]:
    from earshot.audit.checkpoints import maybe_checkpoint
    from earshot.privacy.retention import run_retention

    return [
        Job("audit-sequence", 5.0, sequence_audit_events),
        Job("audit-checkpoint", 5.0, maybe_checkpoint),
        Job("media-purge", 300.0, purge_unused_media),
        Job("retention", float(deployment.settings.retention_interval_s), run_retention),
    ]


def start_background_jobs(deployment: Deployment) -> BackgroundJobs | None:
    """Start the jobs unless the deployment disables them (`background_jobs = false`).

    Called once by server and worker processes at start-up. With background jobs on, their commits
    also hand audit events to a background sequencer thread instead of sequencing them inline.
    """
    if not deployment.settings.background_jobs:
        return None
    from earshot.audit.context import use_background_sequencer

    use_background_sequencer(deployment)
    jobs = BackgroundJobs(deployment, default_jobs(deployment))
    jobs.start()
    return jobs
