"""Numbers said by real people (`earshot eval --pii --pii-digits`): the digit bank, how numbers
are joined and grouped, and how their figures decide the verdict."""

from __future__ import annotations

import csv
import json
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from earshot.evaluation import pii_eval
from earshot.evaluation.manifest import ManifestError
from earshot.evaluation.pii_eval import Planted
from earshot.evaluation.real_digits import (
    FORM_ALONE,
    FORM_SENTENCE,
    DigitBank,
    build_items,
    grouped,
    number_audio,
)
from earshot.pipeline.types import SAMPLE_RATE

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _write_bank(folder: Path, speakers: dict[str, list[str]], rate: int = 8000) -> Path:
    """A manifest of short tones, one file per (speaker, transcript); 8 kHz like FSDD."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "MANIFEST.tsv"
    with out.open("w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["path", "speaker", "transcript"])
        for s, words in speakers.items():
            for i, word in enumerate(words):
                t = np.arange(int(0.3 * rate)) / rate
                tone = (0.2 * np.sin(2 * np.pi * (200 + 40 * i) * t)).astype(np.float32)
                name = f"{s}_{i}.wav"
                sf.write(folder / name, tone, rate)
                w.writerow([name, s, word])
    return out


def test_bank_keeps_speakers_who_said_all_ten_digits(tmp_path: Path) -> None:
    manifest = _write_bank(
        tmp_path,
        {
            "ann": [*WORDS, "oh"],  # "oh" is a second take of zero
            "bob": WORDS[:9],  # never said nine
            "cy": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "hello there"],
        },
    )
    bank = DigitBank.from_manifest(manifest)
    assert bank.speakers == ["ann", "cy"]
    assert len(bank.takes["ann"]["0"]) == 2 and "hello there" not in json.dumps(
        {d: [str(p) for p in ps] for d, ps in bank.takes["cy"].items()}
    )
    x = bank.say("ann", "3", random.Random(0))
    assert x.dtype == np.float32 and abs(len(x) - 0.3 * SAMPLE_RATE) < 2  # resampled to 16 kHz


def test_a_manifest_without_full_digit_speakers_is_a_clear_error(tmp_path: Path) -> None:
    manifest = _write_bank(tmp_path, {"bob": WORDS[:9], "sam": ["good morning"]})
    with pytest.raises(ManifestError, match="all ten digits"):
        DigitBank.from_manifest(manifest)


@pytest.mark.parametrize(
    ("typ", "digits", "groups"),
    [
        ("PHONE", "07700900123", ["07700", "900", "123"]),
        ("PHONE", "4155550199", ["415", "555", "0199"]),
        ("CARD", "4111111111111111", ["4111", "1111", "1111", "1111"]),
        ("SORT_CODE", "401276", ["40", "12", "76"]),
        ("PIN", "9321", ["9321"]),
    ],
)
def test_numbers_are_grouped_as_callers_read_them(typ: str, digits: str, groups: list[str]) -> None:
    assert grouped(typ, digits) == groups


def test_a_number_is_the_speakers_takes_with_pauses_between_groups(tmp_path: Path) -> None:
    bank = DigitBank.from_manifest(_write_bank(tmp_path, {"ann": WORDS}))
    x = number_audio(bank, "ann", ["12", "345"], random.Random(1))
    quiet = np.abs(x) < 1e-6  # the pauses are true silence; a tone only crosses zero
    padded = np.concatenate([[0], quiet.astype(int), [0]])
    starts, ends = np.flatnonzero(np.diff(padded) == 1), np.flatnonzero(np.diff(padded) == -1)
    gaps = [(e - b) / SAMPLE_RATE for b, e in zip(starts, ends, strict=True) if e - b > 0.01 * SAMPLE_RATE]
    assert len(gaps) == 4  # five digits, four pauses
    assert gaps[1] >= 0.25 and all(0.03 <= g <= 0.13 for i, g in enumerate(gaps) if i != 1)
    assert np.isclose(np.abs(x).max(), 0.7, atol=1e-3)  # brought to a common peak


def test_items_alternate_alone_and_in_a_sentence_and_know_where_the_value_is(
    tmp_path: Path,
) -> None:
    bank = DigitBank.from_manifest(_write_bank(tmp_path, {"ann": WORDS, "bob": WORDS}))
    before = np.full(SAMPLE_RATE // 2, 0.3, np.float32)

    def carrier(typ: str) -> tuple[str, str, np.ndarray, np.ndarray]:
        return "My number is", "", before, np.zeros(0, np.float32)

    items = build_items(bank, random.Random(2), per_speaker=4, carrier=carrier)
    assert len(items) == 8 and {it.voice for it in items} == {"real:ann", "real:bob"}
    assert [it.form for it in items[:4]] == [FORM_ALONE, FORM_SENTENCE] * 2
    assert len({it.type for it in items}) >= 4
    for it in items:
        assert it.parts[1].replace(",", "").split() == [WORDS[int(d)] for d in it.value]
        a, b = (int(round(t * SAMPLE_RATE)) for t in it.extents["value"])
        inside = np.abs(it.audio[a:b]) > 0.01
        assert inside[: int(0.2 * SAMPLE_RATE)].any() and inside[-int(0.2 * SAMPLE_RATE) :].any()
        if it.form == FORM_ALONE:  # nothing but the number is audible
            assert not (np.abs(it.audio[:a]) > 0.01).any() and not (np.abs(it.audio[b:]) > 0.01).any()
        else:
            assert it.extents["before"] == (0.0, 0.5) and it.parts[0] == "My number is"
    assert all(it.form == FORM_ALONE for it in build_items(bank, random.Random(2), per_speaker=2))


def _row(form: str, silenced: float, audio_full: bool = False, text_full: bool = False) -> dict:
    return {
        "type": "PHONE", "form": form, "voice": "real:ann", "orig_full": True,
        "orig_part": True, "audio_full": audio_full, "audio_part": audio_full,
        "text_full": text_full, "text_part": text_full, "coverage": silenced,
        "value_silenced": silenced, "other_ref": 0, "other_heard_orig": 0,
        "other_heard_deid": 0, "other_in_asr": 0, "other_in_masked": 0, "masked_words": 1,
        "false_masked_words": 0,
    }  # fmt: skip


def test_real_digit_figures_pass_only_when_listener_asr_and_text_all_do() -> None:
    rows = [_row(FORM_ALONE, 1.0) for _ in range(10)] + [_row(FORM_SENTENCE, 1.0) for _ in range(10)]
    s = pii_eval.summarise_real_digits(rows)
    assert s["pass"] is True and s["numbers"] == 20 and s["speakers"] == ["real:ann"]
    assert s["by_form"][FORM_SENTENCE]["listener_recall"] == 1.0
    heard = pii_eval.summarise_real_digits([*rows, _row(FORM_SENTENCE, 0.3)])
    assert heard["listener_recall"] == round(20 / 21, 4) and heard["pass"] is True  # >= 0.95
    assert heard["by_form"][FORM_SENTENCE]["listener_recall"] == round(10 / 11, 4)
    twice = pii_eval.summarise_real_digits([*rows, _row(FORM_SENTENCE, 0.3), _row(FORM_ALONE, 0.5)])
    assert twice["pass"] is False  # a listener still hears 2 numbers of 22: 0.91
    asr = pii_eval.summarise_real_digits([*rows, _row(FORM_ALONE, 1.0, audio_full=True)] + rows)
    assert asr["audio_recall"] == round(40 / 41, 4) and asr["pass"] is True
    text = pii_eval.summarise_real_digits([*rows, *[_row(FORM_ALONE, 1.0, text_full=True)] * 2])
    assert text["text_recall_all"] == round(20 / 22, 4) and text["pass"] is False
    assert pii_eval.summarise_real_digits([])["pass"] is False  # nothing measured: no pass


@pytest.mark.slow
def test_pii_eval_plants_numbers_said_with_a_digit_bank(tmp_path: Path, monkeypatch) -> None:
    """End to end: a bank of spoken digits (espeak-ng here, real speakers in use), two numbers."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    folder = tmp_path / "digits"
    folder.mkdir()
    rows = []
    for word in WORDS:
        subprocess.run(  # noqa: S603 - fixed executable
            ["espeak-ng", "-v", "en-us", "-w", str(folder / f"{word}.wav"), word], check=True
        )
        rows.append([f"{word}.wav", "espeak", word])
    with (folder / "MANIFEST.tsv").open("w", newline="") as f:
        csv.writer(f, delimiter="\t").writerows([["path", "speaker", "transcript"], *rows])
    bank = DigitBank.from_manifest(folder / "MANIFEST.tsv")
    control = [Planted("NONE", "control", "I have two dogs.", "", ["i", "have", "two", "dogs"])]
    monkeypatch.setattr(pii_eval, "build_sentences", lambda rng, per_type: control)
    summary = pii_eval.run_pii_eval(
        tmp_path / "out", voices=["en-us"], digit_bank=bank, real_per_speaker=2
    )
    real = summary["real_digits"]
    assert real["numbers"] == 2 and real["speakers"] == ["real:espeak"]
    assert set(real["by_form"]) == {FORM_ALONE, FORM_SENTENCE}
    saved = json.loads((tmp_path / "out" / "pii_eval.json").read_text())
    seen = [(r["hyp_original"], r["masked"], r["value_silenced"]) for r in saved["real_digit_rows"]]
    assert real["listener_recall"] == 1.0, seen  # every number silenced in what a reviewer hears
    assert summary["verdicts"]["real_digits_recall"] is real["pass"]
    assert summary["sentences"] == 1  # the synthetic figures are not mixed with the real ones


def test_the_summary_table_shows_the_real_digit_verdict() -> None:
    from earshot.evaluation.report import _pii_rows

    rows = [_row(FORM_ALONE, 1.0) for _ in range(3)] + [_row(FORM_SENTENCE, 0.2)]
    pii = pii_eval.summarise([_row(FORM_ALONE, 1.0)] * 3)
    pii["real_digits"] = pii_eval.summarise_real_digits(rows)
    table = {r[1]: r for r in _pii_rows(pii)}
    real = table["real digit runs removed"]
    assert real[2].startswith("listener 0.75 (4)") and real[3] == ">= 0.95" and real[4] == "FAIL"
    del pii["real_digits"]
    assert "real digit runs removed" not in {r[1] for r in _pii_rows(pii)}
