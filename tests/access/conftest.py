"""Fixtures for the access tests: an app on the parametrised database, clients from chosen addresses."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from earshot.deployment import Deployment


def access_only_app(deployment: Deployment) -> FastAPI:
    """The access router with the production hardening, for when the full app cannot be built."""
    from pathlib import Path

    from fastapi.staticfiles import StaticFiles

    import earshot.web
    from earshot.access import views
    from earshot.web.security import SecurityHeaders

    app = FastAPI()
    app.state.deployment = deployment
    app.add_middleware(SecurityHeaders)
    app.mount(
        "/static", StaticFiles(directory=str(Path(earshot.web.__file__).parent / "static")), name="static"
    )
    app.include_router(views.router)
    return app


@pytest.fixture
def app(deployment: Deployment) -> FastAPI:
    from tests.access.helpers import build_app

    return build_app(deployment)


@pytest.fixture
def new_client(app: FastAPI) -> Iterator[Callable[..., TestClient]]:
    """Factory for browsers: `new_client("10.9.9.9", user_agent="other")`."""
    made: list[TestClient] = []

    def factory(ip: str = "127.0.0.1", *, user_agent: str = "testclient", port: int = 50000) -> TestClient:
        c = TestClient(
            app, client=(ip, port), base_url="http://127.0.0.1", headers={"user-agent": user_agent}
        )
        c.__enter__()
        made.append(c)
        return c

    yield factory
    for c in made:
        c.__exit__(None, None, None)


@pytest.fixture
def client(new_client: Callable[..., TestClient]) -> TestClient:
    return new_client()
