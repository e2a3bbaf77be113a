"""ASR: tiny.en gets espeak speech mostly right with monotonic word timings; model hash enforced."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from earshot.pipeline.asr import (
    PINNED_MODEL_SHA256,
    AsrOptions,
    ModelIntegrityError,
    WhisperTranscriber,
    default_model_path,
    file_sha256,
    get_transcriber,
)
from earshot.pipeline.types import SAMPLE_RATE
from tests.pipeline.audio_helpers import SENTENCE

pytestmark = pytest.mark.slow


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", text.lower()).split()


def _recall(reference: str, hypothesis: str) -> float:
    ref, hyp = _words(reference), _words(hypothesis)
    return sum(1 for w in ref if w in hyp) / len(ref)


def _check_timings(transcript, duration: float) -> None:  # noqa: ANN001
    assert transcript.words
    last_start = 0.0
    for w in transcript.words:
        assert 0.0 <= w.start_s <= w.end_s <= duration + 1e-6
        assert w.start_s >= last_start
        last_start = w.start_s


def test_espeak_sentence_mostly_right_with_monotonic_timings(transcriber, sentence) -> None:  # noqa: ANN001
    t = transcriber.transcribe(sentence)
    assert _recall(SENTENCE, t.text) >= 0.8
    _check_timings(t, len(sentence) / SAMPLE_RATE)
    # Word times track the audio: the first word starts near the speech onset, the last ends
    # near its end.
    onset = np.argmax(np.abs(sentence) > 0.02) / SAMPLE_RATE
    offset = (len(sentence) - np.argmax(np.abs(sentence[::-1]) > 0.02)) / SAMPLE_RATE
    assert abs(t.words[0].start_s - onset) < 0.6
    assert abs(t.words[-1].end_s - offset) < 0.8


def test_batch_matches_single_and_keeps_order(transcriber, say) -> None:  # noqa: ANN001
    texts = [
        "Please call me tomorrow morning.",
        "Thank you for your help and sorry for the long message.",
        SENTENCE,
    ]
    audios = [say(t, "en-us+f2") for t in texts]
    batch = transcriber.transcribe_batch(audios)
    assert len(batch) == 3
    for text, audio, t in zip(texts, audios, batch, strict=True):
        assert _recall(text, t.text) >= 0.7
        _check_timings(t, len(audio) / SAMPLE_RATE)
    assert batch[1].text == transcriber.transcribe(audios[1]).text


def test_parallel_replicas_match_one_replica_in_input_order(transcriber, say) -> None:  # noqa: ANN001
    texts = [
        "Please call me tomorrow morning.",
        "Thank you for your help.",
        "The parcel left the depot on Monday.",
        "Sorry for the long message.",
        "Five apples and two oranges.",
    ]
    audios = [
        say(t, v) for t, v in zip(texts, ["en-us", "en-us+f2", "en-gb", "en-us+m3", "en-us"], strict=True)
    ]
    assert transcriber.options.workers == 2  # the default: batches split between two replicas
    one = WhisperTranscriber(options=AsrOptions(workers=1))
    parallel = transcriber.transcribe_batch(audios)
    serial = one.transcribe_batch(audios)
    assert [t.text for t in parallel] == [t.text for t in serial]
    for text, t in zip(texts, parallel, strict=True):
        assert _recall(text, t.text) >= 0.6


def test_a_single_batch_goes_to_the_two_thread_replica(monkeypatch, transcriber, say) -> None:  # noqa: ANN001
    """A one-snippet call would leave one of the two one-thread replicas idle."""
    audios = [say("Please call me tomorrow morning."), say("Thank you for your help.", "en-us+f2")]
    used: list[object] = []
    encode = transcriber._encode

    def spy(feats, model):  # noqa: ANN001, ANN202
        used.append(model)
        return encode(feats, model)

    monkeypatch.setattr(transcriber, "_encode", spy)
    (alone,) = transcriber.transcribe_batch([audios[0]])
    assert used == [transcriber._solo] and transcriber._solo is not transcriber._model
    used.clear()
    batched = transcriber.transcribe_batch(audios)  # two batches: the two one-thread replicas
    assert used == [transcriber._model, transcriber._model]
    assert batched[0].text == alone.text
    plain = WhisperTranscriber(options=AsrOptions(solo_replica=False))
    assert plain._solo is None and plain.transcribe(audios[0]).text == alone.text


def test_blas_held_to_one_thread_while_transcribing(monkeypatch, transcriber, sentence) -> None:  # noqa: ANN001
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    seen: list[list[int]] = []
    encode = transcriber._encode

    def spy(feats, model):  # noqa: ANN001, ANN202
        seen.append(blas_threads())
        return encode(feats, model)

    monkeypatch.setattr(transcriber, "_encode", spy)
    transcriber.transcribe_batch([sentence, sentence[: SAMPLE_RATE * 2]])
    assert seen and all(threads == [1] * len(before) for threads in seen)
    assert blas_threads() == before  # restored after the call


def test_silence_and_long_audio(transcriber, sentence) -> None:  # noqa: ANN001
    assert transcriber.transcribe(np.zeros(SAMPLE_RATE * 3, np.float32)).words == []
    assert transcriber.transcribe_batch([np.zeros(100, np.float32)])[0].text == ""
    # Longer than one 30 s window goes through faster-whisper's own loop; timings still local.
    gap = np.zeros(SAMPLE_RATE * 12, np.float32)
    long = np.concatenate([sentence, gap, sentence, gap, sentence])
    t = transcriber.transcribe(long)
    _check_timings(t, len(long) / SAMPLE_RATE)
    assert t.words[-1].start_s > 2 * (len(sentence) / SAMPLE_RATE + 12)
    assert _words(t.text).count("music") == 3


def test_pinned_hash_is_the_bundled_model() -> None:
    assert file_sha256(default_model_path() / "model.bin") == PINNED_MODEL_SHA256


def test_hash_mismatch_refuses_to_load(tmp_path: Path) -> None:
    fake = tmp_path / "model"
    fake.mkdir()
    src = default_model_path()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(src / name, fake / name)
    (fake / "model.bin").write_bytes(b"not the pinned weights")
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        WhisperTranscriber(fake)
    # The real weights with a different expected hash are refused too (before loading).
    with pytest.raises(ModelIntegrityError):
        WhisperTranscriber(src, expected_sha256="0" * 64)


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="not found"):
        WhisperTranscriber(tmp_path)


def test_factory_loads_once_per_configuration(transcriber) -> None:  # noqa: ANN001
    assert get_transcriber() is transcriber
    assert get_transcriber() is get_transcriber()


def test_looping_output_is_decoded_again_not_dropped(say) -> None:  # noqa: ANN001
    from earshot.pipeline.asr import AsrOptions

    # Threshold 0: every result counts as a loop, so every piece takes the retry path.
    strict = WhisperTranscriber(options=AsrOptions(compression_ratio_threshold=0.0))
    audio = say("Please call me tomorrow morning.")
    (t,) = strict.transcribe_batch([audio])
    assert _recall("Please call me tomorrow morning.", t.text) >= 0.8
    _check_timings(t, len(audio) / SAMPLE_RATE)
