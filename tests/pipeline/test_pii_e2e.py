"""End to end on synthetic speech: ASR word timings -> PII spans -> redacted audio and text."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from earshot.evaluation.pii_eval import Planted, synthesize_planted, text_digits
from earshot.pipeline.pii import detect_pii, mask_transcript
from earshot.pipeline.redact import redact_audio

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def asr():  # noqa: ANN201
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    try:
        from earshot.pipeline.asr import get_transcriber

        return get_transcriber()
    except Exception as exc:  # noqa: BLE001 - any missing model/package means skip
        pytest.skip(f"whisper model not available ({type(exc).__name__})")


def test_spoken_phone_number_is_found_bleeped_and_masked(asr) -> None:  # noqa: ANN001
    item = Planted("PHONE", "digits", "", "5550199", [],
                   ("Please call me on", "five five five, oh one nine nine.", "Thank you."))
    audio, extent = synthesize_planted(item, "en-us")
    transcript = asr.transcribe(audio)
    spans = detect_pii(transcript)
    assert any(s.type in ("PHONE", "NUMBER") for s in spans)
    # the span's timing lands on the spoken value
    start, end = extent
    s = next(s for s in spans if s.type in ("PHONE", "NUMBER"))
    assert s.start_s < end and s.end_s > start
    out = redact_audio(audio, spans)
    assert len(out) == len(audio)
    a, b = (int(t * 16000) for t in extent)
    assert np.abs(out[a + 2400 : b - 2400]).max() < 1e-6  # the value's speech is gone
    assert "5550199" not in text_digits(asr.transcribe(out).text)
    masked = mask_transcript(transcript, spans)
    assert "[PHONE]" in masked or "[NUMBER]" in masked
    assert "5550199" not in text_digits(masked)
