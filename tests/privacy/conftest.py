"""Fixtures for the customer-rights tests: an app with only the routers under test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from earshot.deployment import Deployment


@pytest.fixture
def api(deployment: Deployment) -> Iterator[TestClient]:
    """The privacy router alone, so these tests do not depend on the rest of the app being wired."""
    from earshot.privacy import views

    app = FastAPI()
    app.state.deployment = deployment
    app.include_router(views.router)
    with TestClient(app, client=("127.0.0.1", 50000), base_url="http://127.0.0.1") as c:
        yield c
