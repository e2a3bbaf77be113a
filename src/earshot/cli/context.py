"""Opening a deployment from the CLI's `--data-dir`."""

from __future__ import annotations

from pathlib import Path

from earshot.config import load_settings
from earshot.deployment import Deployment


def open_deployment(data_dir: Path) -> Deployment:
    return Deployment.open(load_settings(data_dir))
