"""The OpenAPI 3.1 document, generated from the pydantic models in `schemas/`, and Swagger UI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, send_from_directory
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api import jobs_openapi as extra
from api.admin_openapi import SCHEMAS as ADMIN_SCHEMAS
from api.admin_openapi import SECURITY_SCHEME as ADMIN_SECURITY_SCHEME
from api.admin_openapi import admin_paths, self_paths
from api.batches_openapi import SCHEMAS as BATCH_SCHEMAS
from api.batches_openapi import batch_paths
from api.rate_limits_openapi import with_rate_limits
from api.rescore_openapi import SCHEMAS as RESCORE_SCHEMAS
from api.rescore_openapi import callback_paths, rescore_paths
from api.retention_openapi import SCHEMAS as RETENTION_SCHEMAS
from api.retention_openapi import audit_paths, delete_operation
from api.state import state
from api.uploads_openapi import SCHEMAS as UPLOAD_SCHEMAS
from api.uploads_openapi import upload_paths
from api.webhook_openapi import SCHEMAS as WEBHOOK_SCHEMAS
from api.webhook_openapi import webhook_paths
from schemas.api import JobList, JobView, Problem, TranscriptJobIn
from schemas.common import JobStatus
from schemas.events import JobProgress
from schemas.result import CallResult

bp = Blueprint("docs", __name__)
REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref(Problem)}},
    }


def _ok(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


LIMIT = {"type": "integer", "minimum": 1, "maximum": 100, "description": "Page size"}
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_AUDIO_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "WAV, MP3, FLAC, OGG, M4A"},
        "external_id": {"type": "string"},
        "agent_id": {"type": "string"},
        "call_type": {"type": "string"},
        "language": {"type": "string"},
        "channel_map": {"type": "string", "description": "JSON, or 'agent,customer'"},
        "metadata": {"type": "string", "description": "a JSON object"},
        "callback_url": {"type": "string", "description": "https:// URL for this job's event"},
        "batch_id": {"type": "string", "description": "Join this open batch's backlog"},
    },
}
_ERRORS = {
    "401": _problem("Missing or invalid API key"),
    "404": _problem("No such job (or another tenant's)"),
}


def _submit() -> dict[str, Any]:
    return {
        "summary": "Submit a recording (multipart) or a transcript (JSON)",
        "parameters": [extra.IDEMPOTENCY_KEY],
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": _AUDIO_FORM},
                "application/json": {"schema": _ref(TranscriptJobIn)},
            },
        },
        "responses": {
            "202": _ok(JobView, "Accepted; poll the Location"),
            "401": _ERRORS["401"],
            "413": _problem("Upload or body too large (`limit` in bytes)"),
            "415": _problem("Not a supported audio format"),
            "422": _problem("Invalid options or transcript"),
            **extra.submit_responses(_ok, _problem),  # 200, 400, 409; 202/422 detailed
        },
    }


def _listing() -> dict[str, Any]:
    text = {"type": "string"}
    schemas: dict[str, dict[str, Any]] = {
        "status": {"type": "string", "enum": [s.value for s in JobStatus]},
        "external_id": {"type": "string", "pattern": "^[^\\x00]*$"},
        "batch_id": text,
        "created_gte": {"type": "string", "format": "date-time"},
        "created_lt": {"type": "string", "format": "date-time"},
        "cursor": text,
        "limit": LIMIT,
    }
    return {
        "summary": "List jobs, newest first",
        "parameters": [
            {"name": n, "in": "query", "required": False, "schema": schema}
            for n, schema in schemas.items()
        ],
        "responses": {
            "200": _ok(JobList, "A page of jobs"),
            "400": _problem("Bad filter"),
            "401": _ERRORS["401"],
        },
    }


def _status() -> dict[str, Any]:
    return {
        "summary": "A job's status document",
        "parameters": [_JOB_ID, extra.IF_NONE_MATCH],
        "responses": {
            "200": extra.with_headers(_ok(JobView, "The job"), {**extra.ETAG, **extra.RETRY_AFTER}),
            "304": {"description": "Not modified", "headers": {**extra.ETAG, **extra.RETRY_AFTER}},
            **_ERRORS,
        },
    }


def _result() -> dict[str, Any]:
    return {
        "summary": "A completed job's result",
        "parameters": [_JOB_ID],
        "responses": {
            "200": _ok(CallResult, "The versioned call result"),
            "409": _problem("Not completed yet, or failed"),
            **_ERRORS,
        },
    }


def _health() -> dict[str, Any]:
    def probe(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
        return {"get": {"summary": summary, "security": [], "responses": responses}}

    return {
        "/healthz": probe("Liveness", {"200": {"description": "Up"}}),
        "/readyz": probe(
            "Readiness: database, broker, storage",
            {"200": {"description": "Ready"}, "503": {"description": "Not ready"}},
        ),
        "/metrics": probe(
            "Prometheus metrics (text format); a Bearer METRICS_TOKEN when one is set",
            {
                "200": {
                    "description": "Every process's metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": _problem("METRICS_TOKEN is set and was not presented"),
            },
        ),
    }


def _paths(*, admin: bool) -> dict[str, Any]:
    paths = {
        "/v1/jobs": {"post": _submit(), "get": _listing()},
        "/v1/jobs/{job_id}": {"get": _status(), "delete": delete_operation(_problem, _JOB_ID)},
        "/v1/jobs/{job_id}/result": {"get": _result()},
        "/v1/jobs/{job_id}/events": extra.events_path(_problem, _ERRORS, _JOB_ID),
        **upload_paths(_ok, _problem, _ref),
        **batch_paths(_ok, _problem, _ref),
        **webhook_paths(_ok, _problem, _ref),
        **rescore_paths(_ok, _problem, _ref),
        **callback_paths(_problem),
        **(admin_paths(_ok, _problem, _ref) if admin else {}),
        **self_paths(_ok, _problem, _ref),
        **audit_paths(_ok, _problem),
        **_health(),
    }
    for operations in paths.values():
        for operation in operations.values():
            _house_rules(operation)
    return with_rate_limits(paths, _problem)


def _house_rules(operation: dict[str, Any]) -> None:
    """What every operation shares: a body can be malformed (400), of another type (415) or
    invalid (422), and an empty query value counts as absent (api/requests.py)."""
    content = operation.get("requestBody", {}).get("content", {})
    responses = operation["responses"]
    if "application/json" in content:
        responses.setdefault("400", _problem("Malformed JSON, or not a JSON object"))
    if content:
        responses.setdefault("415", _problem("unsupported_media_type: not a documented body type"))
        responses.setdefault("422", _problem("validation_error: errors[] says where"))
    operation["parameters"] = [
        {**p, "allowEmptyValue": True} if p["in"] == "query" and not p.get("required") else p
        for p in operation.get("parameters", [])
    ]


def openapi_document(*, admin: bool = False) -> dict[str, Any]:
    """The document; the admin operations are listed only where the admin API is enabled
    (`admin`: ADMIN_API_KEY is set), since otherwise every one of them answers 404."""
    models: list[type[BaseModel]] = [JobView, JobList, Problem, TranscriptJobIn, CallResult]
    models.append(JobProgress)  # the data of `event: stage` on /v1/jobs/{job_id}/events
    _, schemas = models_json_schema(
        [(m, "validation" if m is TranscriptJobIn else "serialization") for m in models]
        + WEBHOOK_SCHEMAS
        + RESCORE_SCHEMAS
        + ADMIN_SCHEMAS
        + UPLOAD_SCHEMAS
        + BATCH_SCHEMAS
        + RETENTION_SCHEMAS,
        ref_template=REF,
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": "Callintel API", "version": "1.0.0"},
        "paths": _paths(admin=admin),
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                **(ADMIN_SECURITY_SCHEME if admin else {}),
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    key = state().settings.admin_api_key
    return jsonify(openapi_document(admin=key is not None and bool(key.get_secret_value())))


@bp.get("/docs")
@bp.get("/docs/")
def docs() -> Response:
    return Response(_SWAGGER_PAGE, mimetype="text/html")


@bp.get("/docs/assets/<path:name>")
def docs_assets(name: str) -> Response:
    import swagger_ui  # Swagger UI 5 assets shipped in a package: the page works offline

    return send_from_directory(Path(swagger_ui.__file__).parent / "static", name)


_SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Callintel API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>
"""
