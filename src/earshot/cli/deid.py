"""`earshot deid FILE --out DIR`: the snippets exactly as a reviewer would hear them."""

from __future__ import annotations

from pathlib import Path

import typer


def deid(
    file: Path = typer.Argument(..., help="Recording in any common audio format."),
    out: Path = typer.Option(..., "--out", help="Folder for DIR/*.wav and DIR/snippets.json."),
) -> None:
    """De-identify FILE into reviewer snippets (implemented by the pipeline domain)."""
    raise typer.Exit(2)
