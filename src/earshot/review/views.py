"""The reviewer's web page and API: next task, audio (decrypted on the fly, never cached), grade."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from earshot.access.deps import Principal, csrf_token, require_csrf, require_roles
from earshot.deployment import Deployment
from earshot.review import services
from earshot.web.deps import client_ip, get_deployment, get_session
from earshot.web.templating import templates

router = APIRouter(tags=["review"])

AUDIO_HEADERS = {
    "Cache-Control": "no-store, private",
    "Content-Disposition": "inline",
    "X-Content-Type-Options": "nosniff",
}


class TaskOut(BaseModel):
    assignment_id: str
    transcript: str
    duration_s: float
    audio_url: str
    lease_expires_at: str


class GradeIn(BaseModel):
    transcript: str = Field(max_length=services.MAX_TRANSCRIPT_CHARS)
    accuracy: int = Field(ge=1, le=5)


def _assign(session: Session, deployment: Deployment, principal: Principal, request: Request) -> services.TaskView | None:
    from earshot.access.vetting import vetting_ok

    ok, _reason = vetting_ok(session, principal.user_id)
    if not ok:
        raise HTTPException(403, detail="no tasks until vetting, training and confidentiality agreement are current")
    assignment = services.next_assignment(session, deployment, principal.user_id, ip=client_ip(request))
    if assignment is None:
        session.commit()
        return None
    view = services.task_view(session, deployment, principal.user_id, assignment.id)
    session.commit()
    return view


def _audio_response(session: Session, deployment: Deployment, principal: Principal, assignment_id: str,
                    request: Request) -> Response:
    try:
        audio = services.task_audio(session, deployment, principal.user_id, assignment_id, ip=client_ip(request))
    except services.NotFound:
        raise HTTPException(404, detail="not found") from None
    session.commit()
    return Response(audio, media_type="audio/wav", headers=AUDIO_HEADERS)


# -- API ----------------------------------------------------------------------------------------
@router.get("/api/v1/tasks/next", response_model=TaskOut | None)
def api_next_task(
    request: Request,
    principal: Principal = Depends(require_roles("reviewer")),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> TaskOut | Response:
    """The reviewer's current snippet (assigned by the server, never chosen); 204 when the queue is empty."""
    view = _assign(session, deployment, principal, request)
    if view is None:
        return Response(status_code=204)
    return TaskOut(assignment_id=view.assignment_id, transcript=view.transcript, duration_s=view.duration_s,
                   audio_url=f"/api/v1/tasks/{view.assignment_id}/audio",
                   lease_expires_at=view.lease_expires_at.isoformat())


@router.get("/api/v1/tasks/{assignment_id}/audio", response_class=Response)
def api_task_audio(
    assignment_id: str,
    request: Request,
    principal: Principal = Depends(require_roles("reviewer")),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Response:
    """The snippet's audio, only to the reviewer holding its lease; anything else is 404."""
    return _audio_response(session, deployment, principal, assignment_id, request)


@router.post("/api/v1/tasks/{assignment_id}/grade", status_code=201)
def api_grade(
    assignment_id: str,
    body: GradeIn,
    request: Request,
    principal: Principal = Depends(require_roles("reviewer")),
    _csrf: None = Depends(require_csrf),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> dict[str, str]:
    try:
        grade = services.submit_grade(session, deployment, principal.user_id, assignment_id,
                                      transcript=body.transcript, accuracy=body.accuracy, ip=client_ip(request))
    except services.NotFound:
        raise HTTPException(404, detail="not found") from None
    session.commit()
    return {"grade_id": grade.id}


# -- HTML ---------------------------------------------------------------------------------------
@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
def review_page(
    request: Request,
    principal: Principal = Depends(require_roles("reviewer")),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Response:
    try:
        view = _assign(session, deployment, principal, request)
    except HTTPException as exc:
        if exc.status_code != 403:
            raise
        return templates.TemplateResponse(request, "review/blocked.html", {"principal": principal}, status_code=403)
    return templates.TemplateResponse(
        request, "review/task.html",
        {"task": view, "principal": principal, "csrf_token": csrf_token(request)},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/review/{assignment_id}/audio", response_class=Response, include_in_schema=False)
def review_audio(
    assignment_id: str,
    request: Request,
    principal: Principal = Depends(require_roles("reviewer")),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Response:
    return _audio_response(session, deployment, principal, assignment_id, request)


@router.post("/review/{assignment_id}", include_in_schema=False)
def review_submit(
    assignment_id: str,
    request: Request,
    transcript: str = Form(..., max_length=services.MAX_TRANSCRIPT_CHARS),
    accuracy: int = Form(..., ge=1, le=5),
    principal: Principal = Depends(require_roles("reviewer")),
    _csrf: None = Depends(require_csrf),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Response:
    try:
        services.submit_grade(session, deployment, principal.user_id, assignment_id,
                              transcript=transcript, accuracy=accuracy, ip=client_ip(request))
    except services.NotFound:
        raise HTTPException(404, detail="not found") from None
    session.commit()
    return RedirectResponse("/review", status_code=303)
