"""`earshot eval MANIFEST.tsv`: measure speaker privacy and ASR utility of de-identification."""

from __future__ import annotations

from pathlib import Path

import typer


def eval_cmd(
    manifest: Path = typer.Argument(..., help="MANIFEST.tsv (path, speaker, transcript; header)."),
    out: Path = typer.Option(Path("eval-report"), "--out", help="Folder for report.json/.html."),
    limit: int | None = typer.Option(None, "--limit", min=2, help="At most N utterances."),
    seed: int = typer.Option(0, "--seed", help="Seed of the per-utterance random draws."),
    draws: int = typer.Option(
        1, "--draws", min=1, help="Anonymise every test utterance N times; figures are means."
    ),
    pii: bool = typer.Option(False, "--pii", help="Also measure PII recoverable after de-id."),
    baseline: bool = typer.Option(
        False, "--baseline", help="Also evaluate the McAdams baseline for comparison."
    ),
    asr: bool = typer.Option(True, "--asr/--no-asr", help="Measure WER with faster-whisper."),
    judge: str = typer.Option(
        "whisper",
        "--judge",
        help="ASR for the WER: whisper (tiny.en), whisper-base (never used in tuning) or pocketsphinx.",
    ),
    beam: int = typer.Option(
        1, "--beam", min=1, max=10, help="Beam size of the whisper judge (1: greedy, 5: the library default)."
    ),
    telephone: bool = typer.Option(
        False, "--telephone", help="Pass every utterance through an 8 kHz (telephone) channel first."
    ),
    pii_digits: Path | None = typer.Option(
        None,
        "--pii-digits",
        help="MANIFEST.tsv of single spoken digits by real speakers (e.g. ../shared/data/fsdd): "
        "with --pii, also plant numbers joined from them.",
    ),
    join: int = typer.Option(
        1, "--join", min=1, help="Join N rows of one speaker into each test utterance (e.g. single digits)."
    ),
    attacker: Path | None = typer.Option(
        None,
        "--attacker",
        help="MANIFEST.tsv of other speakers the semi-informed attacker trains on; then every "
        "speaker of MANIFEST is a test speaker.",
    ),
) -> None:
    """Speaker-verification EER (three attackers) and WER on original vs anonymised speech."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from earshot.cli.common import fail
    from earshot.evaluation.asr import JUDGES, JudgeModelError, whisper_base_model_dir
    from earshot.evaluation.manifest import ManifestError
    from earshot.evaluation.report import summary_rows
    from earshot.evaluation.runner import run_eval
    from earshot.pipeline.voice import McAdamsAnonymiser, VoiceAnonymiser

    if judge not in JUDGES:
        raise fail(f"unknown --judge {judge!r}: use {', '.join(JUDGES)}")
    if beam != 1 and not judge.startswith("whisper"):
        raise fail(f"--beam applies to the whisper judges only, not {judge!r}")
    if asr and judge == "whisper-base":
        try:  # before any work: a missing or altered model is a clear error, not a late crash
            whisper_base_model_dir()
        except JudgeModelError as exc:
            raise fail(str(exc)) from None
    if pii_digits is not None and not pii:
        raise fail("--pii-digits needs --pii")
    anonymisers = [VoiceAnonymiser()] + ([McAdamsAnonymiser()] if baseline else [])
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            report = run_eval(
                manifest, out, anonymisers=anonymisers, limit=limit, seed=seed,
                with_asr=asr, pii=pii, judge_name=judge, judge_beam=beam, draws=draws,
                telephone=telephone, pii_digits=pii_digits, join=join, attacker_manifest=attacker,
                progress=progress,
            )
        except (ManifestError, JudgeModelError) as exc:
            raise fail(str(exc)) from None

    table = Table(title=f"earshot eval: {report['manifest']} ({report['n_test_speakers']} test speakers)")
    for col in ("system", "measure", "value", "target", "verdict"):
        table.add_column(col)
    for row in summary_rows(report):
        style = "green" if row[4] == "pass" else ("red" if row[4] == "FAIL" else "")
        table.add_row(*row[:4], f"[{style}]{row[4]}[/{style}]" if style else "")
    Console().print(table)
    typer.echo(f"report: {out / 'report.json'} and {out / 'report.html'}")
