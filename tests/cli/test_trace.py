"""`earshot trace FILE`: names the delivery a leaked file came from, says so when none matched."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from earshot.cli.trace import trace
from earshot.database import utcnow
from earshot.deployment import Deployment
from earshot.review import media, watermark
from earshot.review.delivery_models import Delivery
from tests.conftest import espeak
from tests.review.test_watermark import mp3, to_16k

runner = CliRunner()
app = typer.Typer()
app.command("trace")(trace)
app.command("noop", hidden=True)(lambda: None)  # keeps `trace` a named sub-command


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return to_16k(
        espeak("Please read me the last three messages from my brother about the weekend trip.", speed=150)
    )


@pytest.fixture
def data_dir(tmp_path):
    """A deployment with 1500 delivered plays; returns (dir, the leaking delivery, its mark)."""
    dep = Deployment.at(tmp_path / "d")
    Delivery.__table__.create(dep.db.engine, checkfirst=True)
    now = utcnow()
    marks = [int(m) for m in np.random.default_rng(5).integers(1, 2**47, 1500)]
    rows = [
        {
            "id": f"{i:032x}",
            "mark": m,
            "token_hash": f"{i:064x}",
            "session_hash": "0" * 64,
            "reviewer_id": f"{i:031x}r",
            "assignment_id": f"{i:031x}a",
            "snippet_id": f"{i:031x}s",
            "created_at": now,
            "expires_at": now,
            "used_at": now,
            "ip": "10.1.2.3",
        }
        for i, m in enumerate(marks, start=1)
    ]
    with dep.db.session() as s:
        s.execute(Delivery.__table__.insert(), rows)
    key = media.watermark_key(dep)
    dep.close()
    return tmp_path / "d", rows[700], key


def test_trace_names_the_delivery(tmp_path, data_dir, speech) -> None:
    d, leaking, key = data_dir
    leaked = tmp_path / "leak.mp3"
    marked = watermark.embed(speech, leaking["mark"], key)
    leaked.write_bytes(mp3(marked[16000:96000] * 1.8))
    result = runner.invoke(app, ["trace", str(leaked), "--data-dir", str(d)])
    assert result.exit_code == 0, result.output
    assert f"delivery {leaking['id']}" in result.output
    assert leaking["reviewer_id"] in result.output and leaking["snippet_id"] in result.output
    assert "checked 1500 deliveries" in result.output

    result = runner.invoke(app, ["trace", str(leaked), "--data-dir", str(d), "--json"])
    doc = json.loads(result.output)
    assert doc["matched"] and doc["candidates"] == 1500
    (found,) = doc["deliveries"]
    assert found["delivery_id"] == leaking["id"] and found["confidence"] > 0.999999
    assert found["z"] > doc["threshold_z"]


def test_trace_says_when_nothing_matched(tmp_path, data_dir, speech) -> None:
    d, _, _ = data_dir
    clean = tmp_path / "clean.mp3"
    clean.write_bytes(mp3(speech))
    result = runner.invoke(app, ["trace", str(clean), "--data-dir", str(d)])
    assert result.exit_code == 1
    assert "no delivery matched" in result.output and "1500 deliveries checked" in result.output


def test_trace_window_limits_candidates(tmp_path, data_dir, speech) -> None:
    d, _, _ = data_dir
    clean = tmp_path / "clean.mp3"
    clean.write_bytes(mp3(speech))
    args = ["trace", str(clean), "--data-dir", str(d), "--since", "2999-01-01", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and json.loads(result.output)["candidates"] == 0


def test_trace_refuses_non_audio(tmp_path, data_dir) -> None:
    d, _, _ = data_dir
    junk = tmp_path / "notes.txt"
    junk.write_text("not audio at all")
    result = runner.invoke(app, ["trace", str(junk), "--data-dir", str(d)])
    assert result.exit_code == 2
