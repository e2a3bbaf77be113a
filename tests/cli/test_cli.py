"""The `earshot` command: --help everywhere, --data-dir everywhere, and the main flows."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from earshot.cli.main import app

runner = CliRunner()


def _is_group(cmd: object) -> bool:
    return hasattr(cmd, "commands")


def _walk(group: object, path: tuple[str, ...] = ()):  # noqa: ANN202
    yield path, group
    if _is_group(group):
        for name, cmd in group.commands.items():
            yield from _walk(cmd, (*path, name))


COMMANDS = list(_walk(typer.main.get_command(app)))


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "earshot")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.mark.parametrize(
    "path", [p for p, c in COMMANDS if not _is_group(c)], ids=lambda p: " ".join(p)
)
def test_every_command_takes_data_dir(path: tuple[str, ...]) -> None:
    if path == ("deid",) or path == ("eval",):
        pytest.skip("works on files only, no deployment")
    result = runner.invoke(app, [*path, "--help"])
    assert "--data-dir" in result.output


def test_products_consent_and_export_flow(tmp_path) -> None:
    d = ["--data-dir", str(tmp_path / "d")]
    r = runner.invoke(app, ["products", "add", "assistant", *d])
    assert r.exit_code == 0 and r.output.strip().startswith("est_")
    r = runner.invoke(app, ["products", "add", "assistant", *d])
    assert r.exit_code != 0
    r = runner.invoke(app, ["products", "list", *d])
    assert "assistant" in r.output and "est_" not in r.output
    r = runner.invoke(app, ["customers", "consent", "c1", "--grant", *d])
    assert r.exit_code == 0 and '"consented": true' in r.output
    r = runner.invoke(app, ["customers", "consent", "c1", "--withdraw", *d])
    assert r.exit_code == 0 and '"consented": false' in r.output
    out = tmp_path / "export.jsonl"
    r = runner.invoke(app, ["export", "--format", "jsonl", str(out), *d])
    assert r.exit_code == 0 and out.read_text() == ""
    assert (tmp_path / "export.jsonl.erased.jsonl").exists()


def test_ingest_refuses_bad_audio_and_counts_no_consent(tmp_path) -> None:
    d = ["--data-dir", str(tmp_path / "d")]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    r = runner.invoke(app, ["ingest", str(bad), "--customer", "c1", *d])
    assert r.exit_code == 0 and "no_consent" in r.output  # never even decoded without consent
    (tmp_path / "d" / "earshot.toml").write_text("sample_rate = 1.0\n")
    runner.invoke(app, ["customers", "consent", "c1", "--grant", *d])
    r = runner.invoke(app, ["ingest", str(bad), "--customer", "c1", *d])
    assert r.exit_code == 2 and "rejected" in r.output


@pytest.mark.slow
def test_demo_no_serve(tmp_path) -> None:
    d = ["--data-dir", str(tmp_path / "demo")]
    r = runner.invoke(app, ["demo", "--no-serve", *d])
    assert r.exit_code == 0, r.output
    links = [line.split()[-1] for line in r.output.splitlines() if "/enrol/" in line]
    assert len(links) == 2 and all(link.startswith("http://localhost:8000/enrol/") for link in links)
    assert "snippets are waiting" in r.output
    queued = int(r.output.split(" snippets are waiting")[0].split()[-1])
    assert queued >= 3
    # Idempotent: a second run adds no recordings, prints fresh links.
    r2 = runner.invoke(app, ["demo", "--no-serve", *d])
    assert r2.exit_code == 0, r2.output
    assert f"{queued} snippets are waiting" in r2.output
    settings = (tmp_path / "demo" / "earshot.toml").read_text()
    assert "sample_rate = 1.0" in settings
