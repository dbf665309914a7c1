"""The OpenAPI 3.1 document and Swagger UI: valid, complete, true to the running API, offline."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from pydantic import SecretStr

from api import create_app
from api.rate_limits import ATTRIBUTE
from api.rate_limits_openapi import HEADERS as RATE_LIMIT_HEADERS
from api.rate_limits_openapi import LIMITED
from pipeline.settings import Settings
from tests.conftest import TenantKey
from tests.unit.api.conftest import PostTranscript


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")  # no API key needed
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def conforms(spec: dict[str, Any], schema_name: str, instance: Any) -> list[str]:
    """Validation errors of `instance` against a component schema of the served document."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    return [e.message for e in OAS31Validator(schema).iter_errors(instance)]


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_the_document_has_the_paths_and_schemas(spec: dict[str, Any]) -> None:
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result"} <= set(spec["paths"])
    assert set(spec["paths"]["/v1/jobs"]) == {"get", "post"}
    schemas = spec["components"]["schemas"]
    assert {"CallResult", "JobView", "JobList", "Problem", "TranscriptJobIn"} <= set(schemas)
    result = spec["paths"]["/v1/jobs/{job_id}/result"]["get"]["responses"]["200"]
    assert result["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CallResult"
    }
    status = spec["paths"]["/v1/jobs/{job_id}"]["get"]["responses"]["200"]
    assert status["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobView"
    }


def undocumented_routes(app: Flask, spec: dict[str, Any], *, admin: bool) -> list[str]:
    undocumented = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith(("/docs", "/openapi")):
            continue
        if rule.rule.startswith("/v1/admin") and not admin:
            continue  # every admin route answers 404 while the admin API is disabled
        path = rule.rule.replace("<", "{").replace(">", "}")
        methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
        documented = set(spec["paths"].get(path, {}))
        undocumented += [f"{m.upper()} {path}" for m in sorted(methods - documented)]
    return undocumented


def test_every_route_of_the_app_is_documented(app: Flask, spec: dict[str, Any]) -> None:
    assert undocumented_routes(app, spec, admin=False) == []


def test_the_admin_api_is_listed_only_when_enabled(
    settings: Settings, spec: dict[str, Any]
) -> None:
    assert [p for p in spec["paths"] if p.startswith("/v1/admin")] == []
    assert "adminKey" not in spec["components"]["securitySchemes"]
    enabled = create_app(
        {"TESTING": True, "SETTINGS": settings.model_copy(update={"admin_api_key": SecretStr("k")})}
    )
    try:
        full = enabled.test_client().get("/openapi.json").json
        assert full is not None and "/v1/admin/tenants" in full["paths"]
        assert undocumented_routes(enabled, full, admin=True) == []
    finally:
        enabled.extensions["callintel"].engine.dispose()


def test_responses_conform_to_the_document(
    client: FlaskClient, tenant: TenantKey, post_transcript: PostTranscript, spec: dict[str, Any]
) -> None:
    job = post_transcript(tenant, metadata={"queue": "vip"})
    assert conforms(spec, "JobView", job) == []
    listing = client.get("/v1/jobs", headers=tenant.headers).json
    assert conforms(spec, "JobList", listing) == []
    problem = client.get(f"/v1/jobs/{job['id']}/result", headers=tenant.headers).json
    assert conforms(spec, "Problem", problem) == []
    assert conforms(spec, "JobView", {"id": 1}) != []  # the check itself can fail


def test_swagger_ui_page(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert 'src="/docs/assets/swagger-ui-bundle.js"' in page
    assert 'href="/docs/assets/swagger-ui.css"' in page
    assert "/openapi.json" in page


@pytest.mark.parametrize(
    ("asset", "kind"),
    [("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")],
)
def test_swagger_ui_assets_are_served_offline(client: FlaskClient, asset: str, kind: str) -> None:
    with client.get(f"/docs/assets/{asset}") as response:
        assert response.status_code == 200
        assert kind in response.mimetype
        assert len(response.get_data()) > 1000


@pytest.mark.parametrize(
    "path", ["/docs/assets/../__init__.py", "/docs/assets/..%2f__init__.py", "/docs/assets/nope.js"]
)
def test_assets_outside_the_static_directory_are_404(client: FlaskClient, path: str) -> None:
    with client.get(path) as response:
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"


def test_idempotency_etags_and_events_are_documented(spec: dict[str, Any]) -> None:
    submit = spec["paths"]["/v1/jobs"]["post"]
    [key] = [p for p in submit["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["in"] == "header" and key["schema"]["maxLength"] == 255
    assert {"200", "202", "400", "409", "422"} <= set(submit["responses"])
    assert "Idempotent-Replayed" in submit["responses"]["202"]["headers"]
    assert "Callintel-Duplicate-Of" in submit["responses"]["200"]["headers"]
    status = spec["paths"]["/v1/jobs/{job_id}"]["get"]
    assert "If-None-Match" in {p["name"] for p in status["parameters"]}
    assert "304" in status["responses"] and "ETag" in status["responses"]["200"]["headers"]
    events = spec["paths"]["/v1/jobs/{job_id}/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert "Last-Event-ID" in {p["name"] for p in events["parameters"]}
    assert "JobProgress" in spec["components"]["schemas"]


def test_the_rate_limited_operations_are_the_documented_ones(app: Flask) -> None:
    limited = {}
    for rule in app.url_map.iter_rules():
        name = getattr(app.view_functions[rule.endpoint], ATTRIBUTE, None)
        if name is not None:
            path = rule.rule.replace("<", "{").replace(">", "}")
            methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
            limited |= {(path, m): name for m in methods}
    assert limited == LIMITED


def test_limited_operations_document_the_429_and_headers(spec: dict[str, Any]) -> None:
    for path, method in LIMITED:
        responses = spec["paths"][path][method]["responses"]
        refused = responses["429"]
        assert "application/problem+json" in refused["content"]
        assert {"Retry-After", *RATE_LIMIT_HEADERS} <= set(refused["headers"])
        successes = [r for code, r in responses.items() if code.startswith("2")]
        assert successes and all(set(RATE_LIMIT_HEADERS) <= set(r["headers"]) for r in successes)
        assert "RateLimit-Limit" not in responses["401"].get("headers", {})
    assert "429" not in spec["paths"]["/v1/jobs"]["get"]["responses"]
