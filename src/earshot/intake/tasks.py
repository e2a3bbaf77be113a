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


@lru_cache(maxsize=2)
def _pipeline(max_snippet_s: float, model_path: str | None, model_sha256: str | None) -> DeidPipeline:
    return DeidPipeline.from_settings(
        Settings(max_snippet_s=max_snippet_s, asr_model_path=model_path, asr_model_sha256=model_sha256)
    )


def pipeline_for(settings: Settings) -> DeidPipeline:
    """One pipeline (models loaded once) per process and configuration."""
    path = str(settings.asr_model_path) if settings.asr_model_path else None
    return _pipeline(settings.max_snippet_s, path, settings.asr_model_sha256)


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
