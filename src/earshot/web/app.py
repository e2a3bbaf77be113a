"""The FastAPI application: the domains' routers, hardening, and error handling."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from earshot import __version__
from earshot.deployment import Deployment
from earshot.web.security import SecurityHeaders

log = logging.getLogger("earshot.web")


def freeze_startup_heap() -> int:
    """Move everything allocated so far (modules, models, ORM metadata) out of the garbage
    collector's reach: a full collection then no longer walks it, which stopped every request
    thread for 100+ ms under load (bench/serve.py). Returns the number of objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def create_app_from_env() -> FastAPI:
    """App factory for `earshot serve --workers N`: each worker process opens the deployment
    named by EARSHOT_DATA_DIR itself, then freezes its start-up heap."""
    from earshot.config import load_settings

    app = create_app(Deployment.open(load_settings(os.environ.get("EARSHOT_DATA_DIR"))))
    freeze_startup_heap()
    return app


def create_app(deployment: Deployment) -> FastAPI:
    """Build the app for one deployment. API under /api/v1, reviewer UI under /."""
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        from earshot.scheduler import start_background_jobs

        jobs = start_background_jobs(deployment)
        try:
            yield
        finally:
            if jobs is not None:
                jobs.stop()

    app = FastAPI(title="Earshot", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.deployment = deployment
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")

    from earshot.access import views as access_views
    from earshot.audit import views as audit_views
    from earshot.intake import views as intake_views
    from earshot.privacy import views as privacy_views
    from earshot.review import views as review_views

    for module in (access_views, audit_views, intake_views, privacy_views, review_views):
        app.include_router(module.router)

    @app.get("/api/v1/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        # Never a stack trace to the client; the log names the type only (no content).
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    return app
