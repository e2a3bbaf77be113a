"""Voice anonymisation: the product's `VoiceAnonymiser` (see docs/deid-evaluation.md)."""

from __future__ import annotations

import numpy as np

from earshot.pipeline.types import Audio
from earshot.pipeline.voice_mcadams import McAdamsAnonymiser


class VoiceAnonymiser:
    """Change the voice of one snippet with parameters drawn from `rng` per call, never stored."""

    name = "earshot"

    def __init__(self) -> None:
        self._impl = McAdamsAnonymiser()

    def anonymise(self, audio: Audio, rng: np.random.Generator) -> Audio:
        """Return an anonymised copy of `audio` (float32 mono, same sample rate)."""
        return self._impl.anonymise(audio, rng)


__all__ = ["McAdamsAnonymiser", "VoiceAnonymiser"]
