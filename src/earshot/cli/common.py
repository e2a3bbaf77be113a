"""Shared CLI plumbing: the `--data-dir` option and opening a deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from earshot.config import DEFAULT_DATA_DIR

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="EARSHOT_DATA_DIR",
        help="Deployment folder (settings, database, encrypted blobs, keys).",
        show_default=True,
    ),
]
DEFAULT = DEFAULT_DATA_DIR


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a clear error (never personal data) and return the exit to raise."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)
