"""Task runners: where pipeline work executes. In-process by default, Celery workers in production.

Tasks are named and take only ids, so a runner can ship them anywhere; every task is idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from earshot.deployment import Deployment

log = logging.getLogger("earshot.tasks")

TaskFn = Callable[..., object]


def registry() -> dict[str, TaskFn]:
    """Every task by name: `fn(deployment, **kwargs)`."""
    from earshot.intake.tasks import process_recording

    return {"process_recording": process_recording}


class TaskRunner(Protocol):
    def submit(self, name: str, **kwargs: str) -> None:
        """Queue task `name` with string arguments (ids only, never content)."""
        ...


class InlineRunner:
    """Runs each task at once in the calling thread: the zero-setup embedded default."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def submit(self, name: str, **kwargs: str) -> None:
        registry()[name](self.deployment, **kwargs)


def runner_for(deployment: Deployment) -> TaskRunner:
    """The runner the deployment is configured with."""
    kind = deployment.settings.task_runner
    if kind == "inline":
        return InlineRunner(deployment)
    if kind == "celery":
        from earshot.pipeline.celery_app import CeleryRunner

        return CeleryRunner(deployment)
    raise ValueError(f"unknown task runner {kind!r}")
