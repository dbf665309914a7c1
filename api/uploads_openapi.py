"""The direct-upload part of the OpenAPI document (`/v1/uploads`; api/openapi.py merges it in)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.webhook_openapi import Helpers, Mode, Ok, ProblemOf, Ref
from schemas.uploads import UploadIn, UploadReceived, UploadView

SCHEMAS: list[tuple[type[BaseModel], Mode]] = [
    (UploadIn, "validation"),
    (UploadView, "serialization"),
    (UploadReceived, "serialization"),
]


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def upload_paths(ok: Ok, problem: ProblemOf, ref: Ref) -> dict[str, Any]:
    h = Helpers(ok, problem, ref)
    create = {
        "summary": "Get a URL to PUT a recording to (S3 directly, or this API for local storage)",
        "description": "PUT the bytes to `url` with `headers` before `expires_at`; then submit "
        "the upload's `id`. The format is recognised from the bytes when the upload is used.",
        "requestBody": {**h.body(UploadIn), "required": False},  # no body: the defaults
        "responses": {
            "201": h.ok(UploadView, "The upload's id and where to PUT it"),
            "413": problem("too_large: `bytes` is over the upload limit"),
            "415": problem("unsupported_media_type: a body that is not JSON"),
            "422": problem("validation_error"),
            "503": problem("uploads_not_configured: local storage without a signing secret"),
            **h.auth(),
        },
    }
    receive = {
        "summary": "Receive the bytes of a direct upload (local storage; the URL from POST)",
        "security": [],
        "parameters": [
            {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string"}},
            _query("tenant", "As given in the URL"),
            _query("expires", "As given in the URL (Unix seconds)"),
            _query("signature", "As given in the URL: the credential"),
        ],
        "requestBody": {
            "required": True,
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        },
        "responses": {
            "201": h.ok(UploadReceived, "Stored"),
            "403": problem("invalid_signature: a wrong, altered or expired URL"),
            "413": problem("too_large: nothing was kept"),
        },
    }
    return {"/v1/uploads": {"post": create}, "/v1/uploads/{upload_id}": {"put": receive}}
