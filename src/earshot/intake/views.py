"""HTTP intake: `POST /api/v1/recordings` from a voice product."""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from earshot.deployment import Deployment
from earshot.intake.deps import require_product
from earshot.intake.models import Product
from earshot.intake.services import RecordingMeta, receive_recording
from earshot.pipeline.decode import AudioError
from earshot.web.deps import client_ip, get_deployment, get_session
from earshot.web.multipart import parse_multipart, read_body

router = APIRouter(tags=["intake"])

ERROR_STATUS = {"too_large": 413, "too_long": 413, "unsupported_codec": 415}


class RecordingMetadata(BaseModel):
    customer_id: str = Field(min_length=1, max_length=256)
    product: str | None = Field(default=None, max_length=64)
    locale: str = Field(default="en-US", max_length=16)
    hypothesis: str | None = Field(default=None, max_length=5000)
    captured_at: datetime | None = None


class IntakeAnswer(BaseModel):
    status: str = Field(description="accepted | no_consent | not_sampled | capped")
    recording_id: str | None = None


@router.post(
    "/api/v1/recordings",
    status_code=202,
    response_model=IntakeAnswer,
    summary="Submit a recording (multipart: `audio` file + `metadata` JSON)",
)
async def post_recording(
    request: Request,
    background: BackgroundTasks,
    product: Product = Depends(require_product),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> JSONResponse:
    body = await read_body(request, deployment.settings.max_upload_bytes + 64 * 1024)
    parts = parse_multipart(request.headers.get("content-type", ""), body)
    del body
    if "audio" not in parts or "metadata" not in parts:
        raise HTTPException(
            400, detail={"code": "bad_request", "message": "parts `audio` and `metadata` are required"}
        )
    try:
        meta = RecordingMetadata.model_validate(json.loads(bytes(parts["metadata"].data)))
    except (ValueError, ValidationError) as exc:
        raise HTTPException(
            422,
            detail={"code": "bad_metadata", "message": "metadata is not valid JSON of the expected shape"},
        ) from exc
    if meta.captured_at is not None and meta.captured_at.tzinfo is None:
        raise HTTPException(422, detail={"code": "bad_metadata", "message": "captured_at needs a timezone"})
    try:
        result = receive_recording(
            deployment,
            session,
            product,
            RecordingMeta(meta.customer_id, meta.locale, meta.hypothesis, meta.captured_at),
            bytes(parts["audio"].data),
            ip=client_ip(request),
        )
    except AudioError as exc:
        session.rollback()
        raise HTTPException(
            ERROR_STATUS.get(exc.code, 400), detail={"code": exc.code, "message": str(exc)}
        ) from None
    session.commit()
    if result.recording_id:
        background.add_task(deployment.runner.submit, "process_recording", recording_id=result.recording_id)
    return JSONResponse({"status": result.status, "recording_id": result.recording_id}, status_code=202)
