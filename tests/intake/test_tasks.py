"""The intake task builds its pipeline from the deployment's settings, once per configuration."""

from __future__ import annotations

import pytest

from earshot.config import Settings
from earshot.intake.tasks import pipeline_for


@pytest.mark.slow
def test_the_pipeline_follows_the_deployments_threads_and_second_opinion() -> None:
    one = pipeline_for(Settings(asr_threads=1, second_opinion=False))
    assert one is pipeline_for(Settings(asr_threads=1, second_opinion=False))  # loaded once
    assert one.second_opinion is None
    assert one._voice_pool is None  # one thread: no voice-change pool
    two = pipeline_for(Settings(asr_threads=2))
    assert two is not one
    assert two.second_opinion is not None
    assert two._voice_pool is not None
