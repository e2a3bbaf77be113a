"""The reviewer's page and API (next task, single-use audio, played, grade, skip, flag) and the lead's.

Reviewers only ever reach their own active lease; anything else is 404. Audio is never at a stable
URL: each play asks for a single-use, session-bound media URL (`earshot.review.media`) whose response
is watermarked for that delivery, `no-store` and inline. Leads see the queue, reviewers' figures, the
escalation queue and adjudications; admins see counts only (`/api/v1/queue/counts`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from earshot.access.deps import Principal, csrf_token, require_csrf, require_roles
from earshot.deployment import Deployment
from earshot.review import consolidation, escalation, lead, media, services
from earshot.review.models import Snippet
from earshot.review.policy import MAX_PLAYBACK_SPEED, policy_for
from earshot.web.deps import client_ip, get_deployment, get_session
from earshot.web.templating import templates

router = APIRouter(tags=["review"])

AUDIO_HEADERS = {
    "Cache-Control": "no-store, private",
    "Content-Disposition": "inline",
    "X-Content-Type-Options": "nosniff",
}
NO_STORE = {"Cache-Control": "no-store"}
POLL_MS = 3000  # how often the reviewer page checks that its snippet was not withdrawn

# The routes this module serves and who may call them, for `earshot.access.policy.ROUTE_ROLES`.
_R, _L, _LA = frozenset({"reviewer"}), frozenset({"lead"}), frozenset({"lead", "admin"})
ROUTES: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/review"): _R,
    ("POST", "/review/{assignment_id}"): _R,
    ("GET", "/api/v1/tasks/next"): _R,
    ("GET", "/api/v1/tasks/{assignment_id}"): _R,
    ("POST", "/api/v1/tasks/{assignment_id}/media"): _R,
    ("GET", "/api/v1/media/{token}"): _R,
    ("POST", "/api/v1/tasks/{assignment_id}/played"): _R,
    ("POST", "/api/v1/tasks/{assignment_id}/grade"): _R,
    ("POST", "/api/v1/tasks/{assignment_id}/skip"): _R,
    ("POST", "/api/v1/tasks/{assignment_id}/flag"): _R,
    ("GET", "/lead"): _L,
    ("GET", "/api/v1/lead/reviewers"): _L,
    ("GET", "/api/v1/escalations"): _L,
    ("GET", "/escalations/{escalation_id}"): _L,
    ("GET", "/api/v1/escalations/{escalation_id}/audio"): _L,
    ("POST", "/api/v1/escalations/{escalation_id}/resolve"): _L,
    ("POST", "/escalations/{escalation_id}"): _L,
    ("GET", "/api/v1/adjudications"): _L,
    ("GET", "/adjudications/{snippet_id}"): _L,
    ("GET", "/api/v1/adjudications/{snippet_id}"): _L,
    ("POST", "/api/v1/adjudications/{snippet_id}"): _L,
    ("POST", "/adjudications/{snippet_id}"): _L,
    ("GET", "/queue"): _LA,
    ("GET", "/api/v1/queue/counts"): _LA,
}


# -- request and response bodies -----------------------------------------------------------------
class TaskOut(BaseModel):
    assignment_id: str
    transcript: str
    duration_s: float
    media_url: str  # POST here for a single-use audio URL
    lease_expires_at: str
    audio_fetched: bool
    played: bool


class TaskState(BaseModel):
    state: str  # active | gone


class MediaOut(BaseModel):
    url: str


class GradeIn(BaseModel):
    transcript: str = Field("", max_length=services.MAX_TRANSCRIPT_CHARS)
    accuracy: int = Field(ge=1, le=5)
    intent_correct: bool | None = None
    flags: list[str] = Field(default_factory=list, max_length=4)


class SkipIn(BaseModel):
    reason: str = Field(max_length=32)


class FlagIn(BaseModel):
    kind: str = Field(max_length=32)
    start_s: float | None = Field(None, ge=0, le=3600)
    end_s: float | None = Field(None, ge=0, le=3600)
    masked_transcript: str | None = Field(None, max_length=services.MAX_TRANSCRIPT_CHARS)


class FlagOut(BaseModel):
    outcome: str
    escalation_id: str | None


class ResolveIn(BaseModel):
    action: str = Field(max_length=32)


class AdjudicateIn(BaseModel):
    transcript: str = Field(max_length=services.MAX_TRANSCRIPT_CHARS)
    make_gold: bool = False  # also use the snippet, with this answer, as a gold snippet


def _errors(call: Callable[[], Any]) -> Any:  # noqa: ANN401 - whatever the service returns
    """Map the review domain's errors to HTTP answers (never revealing whose or why for 404)."""
    try:
        return call()
    except (services.NotFound, media.MediaNotFound):
        raise HTTPException(404, detail="not found") from None
    except services.NotPlayed as exc:
        raise HTTPException(409, detail=str(exc)) from None
    except services.InvalidGrade as exc:
        raise HTTPException(422, detail=str(exc)) from None
    except (services.QuotaReached, media.PlayLimit) as exc:
        raise HTTPException(429, detail=str(exc)) from None


def _vetted(session: Session, principal: Principal) -> None:
    from earshot.access.vetting import vetting_ok

    ok, _reason = vetting_ok(session, principal.user_id)
    if not ok:
        raise HTTPException(
            403, detail="no tasks until vetting, training and confidentiality agreement are current"
        )


def _assign(
    session: Session, deployment: Deployment, principal: Principal, request: Request
) -> services.TaskView | None:
    _vetted(session, principal)
    return _errors(
        lambda: services.assign_and_view(session, deployment, principal.user_id, ip=client_ip(request))
    )


def _task_out(view: services.TaskView) -> TaskOut:
    return TaskOut(
        assignment_id=view.assignment_id,
        transcript=view.transcript,
        duration_s=view.duration_s,
        media_url=f"/api/v1/tasks/{view.assignment_id}/media",
        lease_expires_at=view.lease_expires_at.isoformat(),
        audio_fetched=view.audio_fetched,
        played=view.played,
    )


# -- reviewer API ----------------------------------------------------------------------------------
@router.get("/api/v1/tasks/next", response_model=TaskOut | None)
def api_next_task(
    request: Request,
    principal: Principal = Depends(require_roles("reviewer")),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> TaskOut | Response:
    """The reviewer's current snippet (assigned by the server, never chosen); 204 when none is waiting."""
    view = _assign(session, deployment, principal, request)
    if view is None:
        return Response(status_code=204)
    return _task_out(view)


@router.get("/api/v1/tasks/{assignment_id}", response_model=TaskState)
def api_task_state(
    assignment_id: str,
    principal: Principal = Depends(require_roles("reviewer")),
    session: Session = Depends(get_session),
) -> TaskState:
    """Whether the task is still the reviewer's (a sensitive-content flag elsewhere withdraws it at once)."""
    return TaskState(state=services.task_state(session, principal.user_id, assignment_id))


@router.post("/api/v1/tasks/{assignment_id}/media", response_model=MediaOut)
def api_task_media(
    assignment_id: str,
    principal: Principal = Depends(require_roles("reviewer")),
    _csrf: None = Depends(require_csrf),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> MediaOut:
    """A single-use audio URL for one play, bound to this session and lease, valid for a minute."""
    url = _errors(
        lambda: media.issue_media_url(
            session, deployment, principal.session_id, principal.user_id, assignment_id
        )
    )
    session.commit()
    return MediaOut(url=url)


@router.get("/api/v1/media/{token}", response_class=Response)
def api_media(
    token: str,
    request: Request,
    principal: Principal = Depends(require_roles("reviewer")),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Response:
    """The watermarked audio of one delivery; the URL works once, for its session only."""
    try:
        wav = media.redeem(
            session, deployment, token, principal.session_id, principal.user_id, ip=client_ip(request)
        )
    except media.MediaNotFound:
        session.commit()  # refusals are audited
        raise HTTPException(404, detail="not found") from None
    session.commit()
    return Response(wav, media_type="audio/wav", headers=AUDIO_HEADERS)


@router.post("/api/v1/tasks/{assignment_id}/played", status_code=204, response_class=Response)
def api_played(
    assignment_id: str,
    request: Request,
    principal: Principal = Depends(require_roles("reviewer")),
    _csrf: None = Depends(require_csrf),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Response:
    """The player reached the end; refused (409) before the audio was fetched or could have been heard."""
    _errors(
        lambda: services.mark_played(
            session, deployment, principal.user_id, assignment_id, ip=client_ip(request)
        )
    )
    session.commit()
    return Response(status_code=204)


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
    """Corrected transcript, 1-5 accuracy, intent verdict and grade flags; once, after playing to the end."""
    grade = _errors(
        lambda: services.submit_grade(
            session,
            deployment,
            principal.user_id,
            assignment_id,
            transcript=body.transcript,
            accuracy=body.accuracy,
            intent_correct=body.intent_correct,
            flags=body.flags,
            ip=client_ip(request),
        )
    )
    session.commit()
    return {"grade_id": grade.id}


@router.post("/api/v1/tasks/{assignment_id}/skip", status_code=204, response_class=Response)
def api_skip(
    assignment_id: str,
    body: SkipIn,
    request: Request,
    principal: Principal = Depends(require_roles("reviewer")),
    _csrf: None = Depends(require_csrf),
    session: Session = Depends(get_session),
) -> Response:
    """Give the snippet back with a reason (it goes to someone else, never back to this reviewer)."""
    _errors(
        lambda: escalation.skip(session, principal.user_id, assignment_id, body.reason, ip=client_ip(request))
    )
    session.commit()
    return Response(status_code=204)


@router.post("/api/v1/tasks/{assignment_id}/flag", response_model=FlagOut)
def api_flag(
    assignment_id: str,
    body: FlagIn,
    request: Request,
    principal: Principal = Depends(require_roles("reviewer")),
    _csrf: None = Depends(require_csrf),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> FlagOut:
    """Sensitive content, personal data not removed (with its span) or accidental activation."""
    span = (body.start_s, body.end_s) if body.start_s is not None and body.end_s is not None else None
    result = _errors(
        lambda: escalation.flag(
            session,
            deployment,
            principal.user_id,
            assignment_id,
            body.kind,
            span=span,
            masked_transcript=body.masked_transcript,
            ip=client_ip(request),
        )
    )
    session.commit()
    return FlagOut(outcome=result.outcome, escalation_id=result.escalation_id)


# -- reviewer page ---------------------------------------------------------------------------------
@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
def review_page(
    request: Request,
    principal: Principal = Depends(require_roles("reviewer")),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Response:
    context: dict[str, Any] = {"principal": principal, "csrf_token": csrf_token(request)}
    try:
        view = _assign(session, deployment, principal, request)
    except HTTPException as exc:
        if exc.status_code == 403:
            return templates.TemplateResponse(request, "review/blocked.html", context, status_code=403)
        if exc.status_code == 429:
            context["quota"] = exc.detail
            return templates.TemplateResponse(
                request, "review/task.html", {**context, "task": None}, status_code=429, headers=NO_STORE
            )
        raise
    context.update(
        task=view,
        poll_ms=POLL_MS,
        skip_reasons=escalation.SKIP_REASONS,
        max_speed=MAX_PLAYBACK_SPEED,
    )
    return templates.TemplateResponse(request, "review/task.html", context, headers=NO_STORE)


@router.post("/review/{assignment_id}", include_in_schema=False)
def review_submit(
    assignment_id: str,
    request: Request,
    transcript: str = Form("", max_length=services.MAX_TRANSCRIPT_CHARS),
    accuracy: int = Form(..., ge=1, le=5),
    intent_correct: str = Form("", max_length=3),
    principal: Principal = Depends(require_roles("reviewer")),
    _csrf: None = Depends(require_csrf),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Response:
    """Plain form submission (the page works without fetch for submitting); same checks as the API."""
    intent = {"yes": True, "no": False}.get(intent_correct)
    _errors(
        lambda: services.submit_grade(
            session,
            deployment,
            principal.user_id,
            assignment_id,
            transcript=transcript,
            accuracy=accuracy,
            intent_correct=intent,
            ip=client_ip(request),
        )
    )
    session.commit()
    return RedirectResponse("/review", status_code=303)


# -- lead ----------------------------------------------------------------------------------------
def _counts_dict(counts: lead.QueueCounts) -> dict[str, Any]:
    return dict(counts.__dict__)


@router.get("/api/v1/queue/counts")
def api_queue_counts(
    principal: Principal = Depends(require_roles("lead", "admin")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Queue sizes, open grader slots, active leases, escalations and adjudications waiting (counts only)."""
    return _counts_dict(lead.queue_counts(session))


@router.get("/api/v1/lead/reviewers")
def api_reviewer_figures(
    principal: Principal = Depends(require_roles("lead")),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> list[dict[str, Any]]:
    """Per-reviewer throughput (last hour, shift, total), skips, flags, expiries and gold accuracy."""
    return [
        {**f.__dict__, "gold_accuracy": f.gold_accuracy}
        for f in lead.reviewer_figures(session, policy_for(deployment))
    ]


def _escalation_dict(esc: Any) -> dict[str, Any]:  # noqa: ANN401
    return {
        "escalation_id": esc.id,
        "snippet_id": esc.snippet_id,
        "kind": esc.kind,
        "status": esc.status,
        "resolution": esc.resolution,
        "created_at": esc.created_at.isoformat(),
        "confirmations": esc.confirmations,
        "span_s": None if esc.span_start_s is None else [esc.span_start_s, esc.span_end_s],
        "actions": list(escalation.LEAD_ACTIONS.get(esc.kind, ())),
    }


@router.get("/api/v1/escalations")
def api_escalations(
    principal: Principal = Depends(require_roles("lead")),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    """The lead-only queue: open escalations, oldest first (no content)."""
    return [_escalation_dict(e) for e in escalation.open_escalations(session)]


@router.get("/api/v1/escalations/{escalation_id}/audio", response_class=Response)
def api_escalation_audio(
    escalation_id: str,
    request: Request,
    principal: Principal = Depends(require_roles("lead")),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Response:
    """A lead listens to an escalated snippet (audited, watermarked for this delivery, no-store)."""
    _vetted(session, principal)
    ip = client_ip(request)

    def watermark(snippet: Snippet, wav: bytes) -> bytes:
        return media.deliver_direct(
            session,
            deployment,
            user_id=principal.user_id,
            snippet_id=snippet.id,
            wav=wav,
            principal_session_id=principal.session_id,
            ip=ip,
        )

    def deliver() -> bytes:
        return escalation.escalation_audio(
            session, deployment, principal.user_id, escalation_id, ip=ip, prepare=watermark
        )

    audio = _errors(deliver)
    session.commit()
    return Response(audio, media_type="audio/wav", headers=AUDIO_HEADERS)


def _resolve(
    session: Session,
    deployment: Deployment,
    principal: Principal,
    escalation_id: str,
    action: str,
    request: Request,
) -> Any:  # noqa: ANN401
    _vetted(session, principal)
    esc = _errors(
        lambda: escalation.resolve(
            session, deployment, principal.user_id, escalation_id, action, ip=client_ip(request)
        )
    )
    session.commit()
    return esc


@router.post("/api/v1/escalations/{escalation_id}/resolve")
def api_resolve(
    escalation_id: str,
    body: ResolveIn,
    request: Request,
    principal: Principal = Depends(require_roles("lead")),
    _csrf: None = Depends(require_csrf),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> dict[str, Any]:
    """Handle an escalation: sensitive -> delete | keep_for_safety; personal_data -> delete | redact;
    accidental -> confirm | reject. Recorded in the escalation and the audit log."""
    return _escalation_dict(_resolve(session, deployment, principal, escalation_id, body.action, request))


@router.post("/escalations/{escalation_id}", include_in_schema=False)
def escalation_form(
    escalation_id: str,
    request: Request,
    action: str = Form(..., max_length=32),
    principal: Principal = Depends(require_roles("lead")),
    _csrf: None = Depends(require_csrf),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Response:
    _resolve(session, deployment, principal, escalation_id, action, request)
    return RedirectResponse("/lead", status_code=303)


@router.get("/escalations/{escalation_id}", response_class=HTMLResponse, include_in_schema=False)
def escalation_page(
    escalation_id: str,
    request: Request,
    principal: Principal = Depends(require_roles("lead")),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Response:
    esc = _errors(lambda: escalation.get_open(session, escalation_id))
    transcript = escalation.escalation_transcript(session, deployment, esc)
    return templates.TemplateResponse(
        request,
        "review/escalation.html",
        {
            "principal": principal,
            "csrf_token": csrf_token(request),
            "esc": _escalation_dict(esc),
            "transcript": transcript,
            "procedure": escalation.__doc__,
        },
        headers=NO_STORE,
    )


@router.get("/api/v1/adjudications")
def api_adjudications(
    principal: Principal = Depends(require_roles("lead")),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    """Consolidations waiting for a lead (figures only)."""
    return [
        {
            "snippet_id": c.snippet_id,
            "reason": c.reason,
            "ties": c.ties,
            "mean_pairwise_wer": c.mean_pairwise_wer,
            "grade_agreement": c.grade_agreement,
            "graders": c.graders,
        }
        for c in consolidation.adjudication_queue(session)
    ]


@router.get("/api/v1/adjudications/{snippet_id}")
def api_adjudication(
    snippet_id: str,
    request: Request,
    principal: Principal = Depends(require_roles("lead")),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> dict[str, Any]:
    """The machine transcript, each grader's transcript and grade, and the vote (audited)."""
    view = _errors(
        lambda: consolidation.adjudication_view(
            session, deployment, principal.user_id, snippet_id, ip=client_ip(request)
        )
    )
    session.commit()
    return dict(view.__dict__)


def _adjudicate(
    session: Session,
    deployment: Deployment,
    principal: Principal,
    snippet_id: str,
    text: str,
    request: Request,
    *,
    make_gold: bool = False,
) -> None:
    ip = client_ip(request)

    def decide() -> None:
        consolidation.adjudicate(session, deployment, principal.user_id, snippet_id, text, ip=ip)
        if make_gold:
            snippet = session.get(Snippet, snippet_id)
            if snippet is None:
                raise services.NotFound("no such snippet")
            services.make_gold(session, deployment, snippet, text, actor=f"user:{principal.user_id}")

    _errors(decide)
    session.commit()


@router.post("/api/v1/adjudications/{snippet_id}")
def api_adjudicate(
    snippet_id: str,
    body: AdjudicateIn,
    request: Request,
    principal: Principal = Depends(require_roles("lead")),
    _csrf: None = Depends(require_csrf),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> dict[str, str]:
    """The lead's transcript becomes the consolidated one."""
    _adjudicate(
        session, deployment, principal, snippet_id, body.transcript, request, make_gold=body.make_gold
    )
    return {"status": "adjudicated", "gold": "yes" if body.make_gold else "no"}


@router.post("/adjudications/{snippet_id}", include_in_schema=False)
def adjudication_form(
    snippet_id: str,
    request: Request,
    transcript: str = Form(..., max_length=services.MAX_TRANSCRIPT_CHARS),
    make_gold: str = Form("", max_length=3),
    principal: Principal = Depends(require_roles("lead")),
    _csrf: None = Depends(require_csrf),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Response:
    _adjudicate(session, deployment, principal, snippet_id, transcript, request, make_gold=make_gold == "yes")
    return RedirectResponse("/lead", status_code=303)


@router.get("/adjudications/{snippet_id}", response_class=HTMLResponse, include_in_schema=False)
def adjudication_page(
    snippet_id: str,
    request: Request,
    principal: Principal = Depends(require_roles("lead")),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Response:
    view = _errors(
        lambda: consolidation.adjudication_view(
            session, deployment, principal.user_id, snippet_id, ip=client_ip(request)
        )
    )
    session.commit()
    return templates.TemplateResponse(
        request,
        "review/adjudication.html",
        {"principal": principal, "csrf_token": csrf_token(request), "view": view},
        headers=NO_STORE,
    )


@router.get("/lead", response_class=HTMLResponse, include_in_schema=False)
def lead_page(
    request: Request,
    principal: Principal = Depends(require_roles("lead")),
    session: Session = Depends(get_session),
    deployment: Deployment = Depends(get_deployment),
) -> Response:
    """Queue sizes, reviewers' throughput and gold accuracy, open escalations, adjudications waiting."""
    return templates.TemplateResponse(
        request,
        "review/lead.html",
        {
            "principal": principal,
            "csrf_token": csrf_token(request),
            "counts": lead.queue_counts(session),
            "reviewers": lead.reviewer_figures(session, policy_for(deployment)),
            "escalations": [_escalation_dict(e) for e in escalation.open_escalations(session)],
            "adjudications": consolidation.adjudication_queue(session),
        },
        headers=NO_STORE,
    )


@router.get("/queue", response_class=HTMLResponse, include_in_schema=False)
def queue_page(
    request: Request,
    principal: Principal = Depends(require_roles("lead", "admin")),
    session: Session = Depends(get_session),
) -> Response:
    """Counts only: what an admin may see of the review work."""
    return templates.TemplateResponse(
        request,
        "review/queue.html",
        {"principal": principal, "csrf_token": csrf_token(request), "counts": lead.queue_counts(session)},
        headers=NO_STORE,
    )
