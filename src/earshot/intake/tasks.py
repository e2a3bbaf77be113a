"""Processing of an accepted recording into de-identified snippets (idempotent)."""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
from sqlalchemy import select

from earshot.audit import services as audit
from earshot.config import Settings
from earshot.deployment import Deployment
from earshot.intake.models import Product, Recording
from earshot.intake.services import pcm16_audio
from earshot.pipeline.deid import DeidPipeline
from earshot.review.models import Snippet
from earshot.review.services import add_snippet, remove_snippet

log = logging.getLogger("earshot.intake")


# The settings a DeidPipeline is built from; the cache is keyed on exactly these.
PIPELINE_FIELDS = ("max_snippet_s", "asr_backend", "asr_model_path", "asr_model_sha256", "asr_threads",
                   "second_opinion", "second_opinion_telephone")  # fmt: skip


@lru_cache(maxsize=2)
def _pipeline(values: tuple[tuple[str, object], ...]) -> DeidPipeline:
    return DeidPipeline.from_settings(Settings(**dict(values)), preload=True)


def pipeline_for(settings: Settings) -> DeidPipeline:
    """One pipeline per process and pipeline configuration, every model loaded when it is built
    (a worker's first recording with a rare token does not wait seconds for Presidio)."""
    return _pipeline(tuple((name, getattr(settings, name)) for name in PIPELINE_FIELDS))


def process_recording(deployment: Deployment, recording_id: str) -> None:
    """Decrypt the recording, de-identify it into snippets, store them encrypted, drop the original.

    Safe to run twice: a processed recording is skipped, a half-processed one is redone.
    """
    db = deployment.db
    with db.session() as session:
        recording = session.get(Recording, recording_id)
        if recording is None or recording.status != "pending" or recording.raw_blob_id is None:
            return
        raw = deployment.vault.get_blob(session, recording.customer_id, recording.raw_blob_id)
        graders = session.get(Product, recording.product_id).graders_per_snippet  # type: ignore[union-attr]
    audio = pcm16_audio(raw)
    del raw
    try:
        snippets = pipeline_for(deployment.settings).process(audio.astype(np.float32))
    except Exception as exc:
        log.error("processing failed for recording %s: %s", recording_id, type(exc).__name__)
        with db.session() as session:
            recording = session.get(Recording, recording_id)
            if recording is not None:
                recording.status = "failed"
                audit.record(
                    session,
                    actor="pipeline",
                    action="pipeline.failed",
                    target=recording_id,
                    outcome="error",
                    details={"error": type(exc).__name__},
                )
        return

    with db.session() as session:
        recording = session.get(Recording, recording_id)
        if recording is None or recording.status != "pending":
            return
        for old in session.scalars(select(Snippet).where(Snippet.recording_id == recording_id)):
            remove_snippet(session, deployment, old)
        for position, snip in enumerate(snippets):
            add_snippet(session, deployment, recording, snip, position=position, graders_needed=graders)
        raw_blob = recording.raw_blob_id
        recording.raw_blob_id = None
        recording.status = "processed" if snippets else "no_speech"
        audit.record(
            session,
            actor="pipeline",
            action="pipeline.processed",
            target=recording_id,
            details={"snippets": len(snippets)},
        )
    if raw_blob:
        deployment.vault.delete_blob(raw_blob)
