"""The PII evaluation's building blocks: planted sentences, recovery checks, scoring."""

from __future__ import annotations

import io
import json
import random
import shutil
import wave

import numpy as np
import pytest

from earshot.evaluation import pii_eval
from earshot.evaluation.manifest import telephone_band
from earshot.evaluation.pii_eval import (
    DIGIT_TYPES,
    Planted,
    build_sentences,
    coverage,
    recovered,
    silenced_share,
    summarise,
    text_digits,
    wav_bytes_to_audio,
)
from earshot.pipeline.pii_spoken import luhn_ok
from earshot.pipeline.types import SAMPLE_RATE, PiiSpan


def test_sentence_bank_covers_every_type_and_form() -> None:
    items = build_sentences(random.Random(1), per_type=4)
    types = {i.type for i in items}
    assert types >= {*DIGIT_TYPES, "EMAIL", "NAME", "ADDRESS", "DATE_OF_BIRTH", "NONE"}
    forms = {i.form for i in items if i.type in DIGIT_TYPES}
    assert forms >= {"digits", "oh-double", "written", "grouped"}
    for i in items:
        before, value, after = i.parts
        if i.type != "NONE":
            joined = " ".join(p for p in i.parts if p)
            assert value and pii_eval._words(joined) == pii_eval._words(i.say)
    cards = [i.value for i in items if i.type == "CARD"]
    assert cards and all(luhn_ok(c) for c in cards)
    # deterministic for a seed
    assert [i.say for i in build_sentences(random.Random(1), 4)] == [i.say for i in items]


def test_oh_double_form_says_repeats() -> None:
    items = [i for i in build_sentences(random.Random(3), 4) if i.form == "oh-double"]
    assert items and any("double" in i.say for i in items)
    for i in items:
        assert text_digits(i.parts[1]) == i.value


def test_text_digits_reads_every_form() -> None:
    assert text_digits("call 555-0199 now") == "5550199"
    assert text_digits("oh seven seven double nine one") == "077991"
    assert text_digits("nine hundred and twelve") == "912"
    assert text_digits("no numbers here") == ""


def test_recovered_digits_full_and_partial() -> None:
    item = Planted("PHONE", "digits", "", "4155550123")
    assert recovered(item, "my number is 415 555 0123") == (True, True)
    assert recovered(item, "my number is 415 [PHONE]") == (False, False)
    assert recovered(item, "ends in 0123 I think") == (False, True)


def test_recovered_names_emails_addresses_dates() -> None:
    name = Planted("NAME", "spoken", "", "Priya Castillo")
    assert recovered(name, "My name is Priya Costillo.") == (True, True)
    assert recovered(name, "My name is [NAME].") == (False, False)
    assert recovered(name, "My name is Priya [NAME].") == (False, True)
    email = Planted("EMAIL", "spoken", "", "jane doe")
    assert recovered(email, "jane.doe at gmail.com")[0] is False  # one token "janedoe"
    assert recovered(email, "jane dot doe at gmail dot com") == (True, True)
    addr = Planted("ADDRESS", "spoken", "", "42 Maple Road")
    assert recovered(addr, "I live at 42 maple road") == (True, True)
    assert recovered(addr, "I live at 42 [ADDRESS]") == (False, True)
    dob = Planted("DATE_OF_BIRTH", "spoken", "", "1985")
    assert recovered(dob, "born in nineteen eighty five")[0]


def test_coverage_of_value_speech() -> None:
    audio = np.full(SAMPLE_RATE * 3, 0.5, np.float32)
    extent = (1.0, 2.0)
    assert coverage(audio, extent, [PiiSpan("X", 1.1, 1.9)], margin_s=0.15) == 1.0
    assert coverage(audio, extent, [], margin_s=0.15) == 0.0
    half = coverage(audio, extent, [PiiSpan("X", 1.5, 2.5)], margin_s=0.0)
    assert half == pytest.approx(0.5, abs=0.01)
    # speech outside every snippet is never heard, so it counts as covered
    assert coverage(audio, extent, [], 0.0, heard=[(0.0, 1.5)]) == pytest.approx(0.5, abs=0.01)
    assert coverage(audio, extent, [], 0.0, heard=[]) == 1.0


def test_silenced_share_is_measured_on_the_output_audio() -> None:
    audio = np.full(SAMPLE_RATE * 3, 0.5, np.float32)
    extent = (1.0, 2.0)
    # one snippet covering everything, the value's second half silenced in the output
    out = audio.copy()
    out[int(1.5 * SAMPLE_RATE) : 2 * SAMPLE_RATE] = 0.0
    assert silenced_share(audio, extent, [(0.0, out)]) == pytest.approx(0.5, abs=0.01)
    # the same, but the snippet starts at 0.5 s of the input: alignment is by start time
    assert silenced_share(audio, extent, [(0.5, out[int(0.5 * SAMPLE_RATE) :])]) == pytest.approx(
        0.5, abs=0.01
    )
    # anonymised (changed but not silent) audio is still audible
    assert silenced_share(audio, extent, [(0.0, audio * -0.3)]) == 0.0
    # speech outside every snippet is never heard
    assert silenced_share(audio, extent, [(0.0, audio[: int(1.25 * SAMPLE_RATE)])]) == pytest.approx(
        0.75, abs=0.01
    )
    assert silenced_share(audio, extent, []) == 1.0


def test_wav_bytes_with_streamed_header() -> None:
    rate = 22050
    t = np.arange(rate) / rate
    pcm = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    data = bytearray(buf.getvalue())
    data[4:8] = b"\xff\xff\xff\x7f"  # espeak --stdout writes unknown sizes like this
    x = wav_bytes_to_audio(bytes(data))
    assert x.dtype == np.float32 and abs(len(x) - SAMPLE_RATE) <= 1
    with pytest.raises(ValueError):
        wav_bytes_to_audio(b"not a wav")


def _row(typ: str, orig: bool, audio: bool, text: bool, cov: float = 1.0, **kw: int) -> dict:
    base = {
        "type": typ, "form": "digits", "orig_full": orig, "orig_part": orig,
        "audio_full": audio, "audio_part": audio, "text_full": text, "text_part": text,
        "coverage": cov, "value_silenced": cov, "other_speech_s": 2.0,
        "other_speech_audible_s": 2.0, "other_ref": 4, "other_heard_orig": 4, "other_heard_deid": 4,
        "other_in_asr": 4, "other_in_masked": 4, "masked_words": 2, "false_masked_words": 0,
    }  # fmt: skip
    base.update(kw)
    return base


def test_summarise_recall_precision_and_pass() -> None:
    rows = [_row("PHONE", True, False, False) for _ in range(19)]
    rows.append(_row("PHONE", True, True, False, cov=0.5))
    rows.append(_row("PHONE", False, False, False))  # not recoverable even from the original
    rows += [_row("EMAIL", True, False, False), _row("NAME", True, False, False)]
    rows.append(_row("NONE", False, False, False, masked_words=1, false_masked_words=1))
    s = summarise(rows)
    digits = s["groups"]["digits"]
    assert digits["recoverable"] == 20 and digits["audio_recall"] == 0.95
    assert digits["text_recall"] == 1.0
    assert s["per_type"]["PHONE"]["speech_covered_share"] == round(20 / 21, 4)
    assert s["precision_words"] == round(1 - 1 / (2 * 23 + 1), 4)
    assert s["control_sentences_with_detection"] == 1
    assert digits["listener_recall"] == round(20 / 21, 4)
    lo, hi = digits["listener_recall_ci95"]
    assert lo < 20 / 21 < hi and lo == pytest.approx(0.7733, abs=1e-3)  # Wilson, 21 values
    assert s["non_pii_speech_audible"] == 1.0
    assert s["pass"] is True
    rows.append(_row("NAME", True, True, True))
    assert summarise(rows)["pass"] is False  # names at 0.5
    assert summarise(rows)["verdicts"]["name_recall"] is False


def test_a_value_a_listener_still_hears_fails_even_if_no_asr_gets_it() -> None:
    rows = [_row("EMAIL", False, False, False, cov=0.2) for _ in range(4)]
    rows += [_row("PHONE", True, False, False), _row("NAME", True, False, False)]
    s = summarise(rows)
    assert s["groups"]["email"]["audio_recall"] is None  # the ASR never got one
    assert s["verdicts"]["email_recall"] is False and s["pass"] is False


def test_silencing_everything_fails_the_audible_words_target() -> None:
    rows = [_row("PHONE", True, False, False, other_speech_audible_s=0) for _ in range(5)]
    rows += [_row("EMAIL", True, False, False), _row("NAME", True, False, False)]
    s = summarise(rows)
    assert s["non_pii_speech_audible"] < 0.8 and s["verdicts"]["non_pii_audible"] is False


def test_progress_accepts_both_callback_styles() -> None:
    seen: list[object] = []
    pii_eval._progress_fn(lambda msg: seen.append(msg))("stage", 1, 2)
    pii_eval._progress_fn(lambda s, d, t: seen.append((s, d, t)))("stage", 1, 2)
    pii_eval._progress_fn(None)("stage", 1, 2)
    assert seen == ["stage 1/2", ("stage", 1, 2)]


def test_without_espeak_the_eval_is_skipped_not_crashed(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(pii_eval.shutil, "which", lambda _name: None)
    assert "skipped" in pii_eval.run_pii_eval(tmp_path)


@pytest.mark.slow
def test_small_end_to_end_run(tmp_path, monkeypatch) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    try:
        from earshot.pipeline.asr import default_model_path

        default_model_path()
    except Exception:  # noqa: BLE001
        pytest.skip("the whisper model package is not available")
    bank = [
        Planted("PHONE", "digits", "", "5550199", ["my", "number", "is"],
                ("My number is", "five five five, oh one nine nine.", "")),
        Planted("NONE", "control", "I have two dogs.", "", ["i", "have", "two", "dogs"]),
    ]  # fmt: skip
    monkeypatch.setattr(pii_eval, "build_sentences", lambda rng, per_type: bank)
    summary = pii_eval.run_pii_eval(tmp_path, voices=["en-us"])
    assert summary["sentences"] == 2
    assert (tmp_path / "pii_eval.json").is_file()
    phone = summary["per_type"]["PHONE"]
    rows = json.loads((tmp_path / "pii_eval.json").read_text())["rows"]
    # synthetic values only: what the ASR heard and what was masked, should this fail elsewhere
    seen = [(r["asr_words"], r["masked"], r["coverage"]) for r in rows]
    # The product silences the detected span and any speech no recognised word covers; where
    # the word timings fall inside that (they differ a little between CPUs) is not the point.
    assert phone["speech_covered_share_with_untranscribed"] == 1.0, seen
    assert phone["listener_recall"] == 1.0, seen  # measured on the output audio
    assert phone["text_recovered_share_all"] == 0.0, seen  # the digits are masked in the text
    assert summary["non_pii_speech_audible"] > 0.8
    assert summary["groups"]["digits"]["text_recall"] in (None, 1.0)
    assert isinstance(summary["second_opinion_asked"], int)  # how often Whisper base was asked
    assert summary["pipeline_stage_wall_s"]["asr"] > 0  # where the path's time went


@pytest.mark.slow
def test_telephone_run_hears_every_sentence_through_an_8_khz_channel(tmp_path, monkeypatch) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    bank = [
        Planted("PHONE", "digits", "", "5550199", ["my", "number", "is"],
                ("My number is", "five five five, oh one nine nine.", "")),
    ]  # fmt: skip
    monkeypatch.setattr(pii_eval, "build_sentences", lambda rng, per_type: bank)
    heard: list[int] = []

    def channel(audio):  # noqa: ANN001, ANN202 - the real channel, counted
        heard.append(len(audio))
        return telephone_band(audio)

    monkeypatch.setattr(pii_eval, "telephone_band", channel)
    summary = pii_eval.run_pii_eval(tmp_path, voices=["en-us"], telephone=True)
    assert summary["sentences"] == 1 and len(heard) == 1
    pii_eval.run_pii_eval(tmp_path, voices=["en-us"])
    assert len(heard) == 1  # not without --telephone
