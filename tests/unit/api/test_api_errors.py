"""Error responses: RFC 9457 problem documents with stable codes, never a 500 for bad input."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from api import create_app
from pipeline.settings import Settings
from schemas.api import Problem
from tests.conftest import TenantKey
from tests.support.services import free_port
from tests.unit.api.conftest import TEXT_TRANSCRIPT, PostTranscript

TYPE_BASE = "https://callintel.dev/problems/"


def assert_problem(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.data[:300])
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    Problem.model_validate(body)
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == TYPE_BASE + code
    assert body["title"]
    return body


def test_unknown_route_is_404(client: FlaskClient, tenant: TenantKey) -> None:
    assert_problem(client.get("/v2/jobs", headers=tenant.headers), 404, "not_found")
    assert_problem(client.get("/nothing-here"), 404, "not_found")
    assert_problem(client.get("/v1/jobs/a/b/c", headers=tenant.headers), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/jobs", {"GET", "POST"}),
        ("PUT", "/v1/jobs/job_x", {"GET", "DELETE"}),
        ("POST", "/v1/jobs/job_x/result", {"GET"}),
        ("POST", "/healthz", {"GET"}),
        ("DELETE", "/openapi.json", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(
    client: FlaskClient, tenant: TenantKey, method: str, path: str, allowed: set[str]
) -> None:
    response = client.open(path, method=method, headers=tenant.headers)
    assert_problem(response, 405, "method_not_allowed")
    allow = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed <= allow
    assert allow <= allowed | {"HEAD", "OPTIONS"}


ErrorCase = tuple[str, dict[str, Any], int, str]


def _error_requests(tenant: TenantKey, job_id: str) -> list[ErrorCase]:
    """(method and path, request keywords, expected status, expected code): one of each error."""
    auth = {"headers": tenant.headers}
    boundary, pdf = encode_multipart({"file": FileStorage(io.BytesIO(b"%PDF-1.4"), "x.wav")})
    multipart = f"multipart/form-data; boundary={boundary}"
    text = {**auth, "data": b"x", "content_type": "text/plain"}
    broken_json = {**auth, "data": b"{", "content_type": "application/json"}
    disguised = {**auth, "data": pdf, "content_type": multipart}
    too_big = {**auth, "data": bytes(9 * 1024 * 1024), "content_type": multipart}
    return [
        ("GET /v1/jobs", {}, 401, "unauthenticated"),
        ("GET /v1/jobs/job_missing", auth, 404, "not_found"),
        ("GET /v1/jobs?cursor=%%%", auth, 400, "invalid_cursor"),
        ("GET /v1/jobs?limit=0", auth, 400, "invalid_request"),
        ("GET /v1/jobs?status=nope", auth, 400, "invalid_request"),
        (f"GET /v1/jobs/{job_id}/result", auth, 409, "result_not_ready"),
        ("POST /v1/jobs", text, 415, "unsupported_media_type"),
        ("POST /v1/jobs", disguised, 415, "unsupported_media_type"),
        ("POST /v1/jobs", {**auth, "json": {"transcript": 1}}, 422, "validation_error"),
        ("POST /v1/jobs", broken_json, 400, "invalid_request"),
        ("POST /v1/jobs", too_big, 413, "too_large"),
        ("DELETE /v1/jobs", auth, 405, "method_not_allowed"),
    ]


def test_every_error_is_a_problem_document(
    client: FlaskClient, tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    job = post_transcript(tenant)
    seen = set()
    for request_line, kwargs, status, code in _error_requests(tenant, job["id"]):
        method, path = request_line.split(" ", 1)
        response = client.open(path, method=method, **kwargs)
        body = assert_problem(response, status, code)
        assert "Traceback" not in str(body) and "sqlalchemy" not in str(body).lower()
        seen.add(status)
    assert seen == {400, 401, 404, 405, 409, 413, 415, 422}


@pytest.mark.parametrize("path", ["/v1/jobs/job%00x", "/v1/jobs/job%00x/result"])
def test_nul_in_a_job_id_is_not_found_not_an_outage(
    client: FlaskClient, tenant: TenantKey, path: str
) -> None:
    response = client.get(path, headers=tenant.headers)
    assert response.status_code in {400, 404}, (response.status_code, response.json)


def test_a_very_long_job_id_is_404(client: FlaskClient, tenant: TenantKey) -> None:
    assert_problem(client.get("/v1/jobs/" + "j" * 5000, headers=tenant.headers), 404, "not_found")


@pytest.fixture
def app_without_database(settings: Settings) -> Iterator[Flask]:
    """The app with its database on a closed port: PostgreSQL is down."""
    down = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"}
    )
    app = create_app({"TESTING": True, "SETTINGS": down})
    yield app
    app.extensions["callintel"].engine.dispose()


def test_a_database_outage_is_503_with_retry_after(
    app_without_database: Flask, tenant: TenantKey
) -> None:
    client = app_without_database.test_client()
    for response in (
        client.get("/v1/jobs", headers=tenant.headers),
        client.post("/v1/jobs", headers=tenant.headers, json={"transcript": TEXT_TRANSCRIPT}),
    ):
        body = assert_problem(response, 503, "service_unavailable")
        assert response.headers["Retry-After"].isdigit()
        assert "psycopg" not in str(body) and "127.0.0.1" not in str(body)
