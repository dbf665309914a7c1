"""`/healthz` (the process answers) and `/readyz` (database, broker and storage all reachable)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from pipeline.settings import Settings
from tests.support.services import free_port


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_when_everything_is_up(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok", "storage": "ok"},
    }
    assert "Retry-After" not in response.headers


@pytest.fixture
def broken_app(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Flask]:
    """The app with one dependency pointing at something that is not there (a closed port or a
    bucket that does not exist): real connection failures, nothing patched."""
    port = free_port()
    broken: dict[str, dict[str, Any]] = {
        "database": {"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{port}/x"},
        "broker": {"redis_url": f"redis://127.0.0.1:{port}/0"},
        "storage": {"storage_url": "s3://callintel-no-such-bucket/blobs"},
    }
    app = create_app(
        {"TESTING": True, "SETTINGS": settings.model_copy(update=broken[request.param])}
    )
    yield app
    app.extensions["callintel"].engine.dispose()


@pytest.mark.parametrize("broken_app", ["database", "broker", "storage"], indirect=True)
def test_readyz_names_the_dependency_that_is_down(
    broken_app: Flask, request: pytest.FixtureRequest
) -> None:
    down = request.node.callspec.params["broken_app"]
    response = broken_app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    checks = response.json["checks"]
    assert checks == {name: "unavailable" if name == down else "ok" for name in checks}
    assert set(checks) == {"database", "broker", "storage"}
    assert response.json["status"] == "unavailable"


def test_healthz_does_not_depend_on_the_database(settings: Settings) -> None:
    down = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"}
    )
    app = create_app({"TESTING": True, "SETTINGS": down})
    try:
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        app.extensions["callintel"].engine.dispose()
