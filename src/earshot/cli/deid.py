"""`earshot deid FILE --out DIR`: the snippets exactly as a reviewer would hear them.

Writes DIR/snippet-000.wav, ... (16 kHz mono PCM, no metadata, no watermark) and
DIR/snippets.json: a list of {file, start_s, end_s, transcript, pii: [{type, start_s, end_s}]}
with the masked transcript and times relative to FILE. Bad input gives a one-line error and
exit code 2, and nothing is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from earshot.cli.common import DEFAULT, DataDir, fail


def deid(
    file: Path = typer.Argument(..., help="Recording in any common audio format."),
    out: Path = typer.Option(..., "--out", help="Folder for DIR/*.wav and DIR/snippets.json."),
    data_dir: DataDir = DEFAULT,
) -> None:
    """De-identify FILE into reviewer snippets: cut at pauses, PII bleeped and masked, new voice."""
    from earshot.config import load_settings
    from earshot.pipeline.decode import AudioError, decode_audio
    from earshot.pipeline.deid import DeidPipeline
    from earshot.pipeline.wavio import encode_wav

    settings = load_settings(data_dir)
    try:
        size = file.stat().st_size
        if not file.is_file():
            raise fail(f"{file.name}: not a file", 2)
        if size > settings.max_upload_bytes:
            raise fail(f"{file.name}: larger than the limit of {settings.max_upload_bytes} bytes", 2)
        data = file.read_bytes()
    except OSError as exc:
        raise fail(f"{file.name}: cannot read ({exc.strerror or type(exc).__name__})", 2) from None
    try:
        audio = decode_audio(data, max_duration_s=settings.max_duration_s)
    except AudioError as exc:
        raise fail(f"{file.name}: {exc}", 2) from None
    del data

    snippets = DeidPipeline.from_settings(settings).process(audio)

    if out.exists() and not out.is_dir():
        raise fail(f"{out}: exists and is not a folder", 2)
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("snippet-*.wav"), out / "snippets.json"]:
        stale.unlink(missing_ok=True)  # a previous run's output must not mix with this one
    index = []
    for i, snip in enumerate(snippets):
        name = f"snippet-{i:03d}.wav"
        _write_private(out / name, encode_wav(snip.audio))
        index.append(
            {
                "file": name,
                "start_s": round(snip.start_s, 3),
                "end_s": round(snip.end_s, 3),
                "transcript": snip.transcript,
                "pii": [
                    {"type": p.type, "start_s": round(p.start_s, 3), "end_s": round(p.end_s, 3)}
                    for p in snip.pii
                ],
            }
        )
    _write_private(out / "snippets.json", (json.dumps(index, indent=2) + "\n").encode())
    typer.echo(f"{len(snippets)} snippet(s) written to {out}")


def _write_private(path: Path, data: bytes) -> None:
    """Write with mode 0600: de-identified, but still customer audio and text."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
