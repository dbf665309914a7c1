"""OpenAPI pieces for job deletion (`DELETE /v1/jobs/{job_id}`) and `GET /v1/audit-events`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

from api.audit import ACTIONS
from api.jobs_openapi import IDEMPOTENCY_KEY, RETRY_AFTER, with_headers
from schemas.api import AuditEventList, AuditEventView

Mode = Literal["validation", "serialization"]
Ok = Callable[[type[BaseModel], str], dict[str, Any]]
ProblemOf = Callable[[str], dict[str, Any]]

_TEXT = "^[^\\x00]{0,40}$"  # what api/audit.py accepts as a job id to filter by
SCHEMAS: list[tuple[type[BaseModel], Mode]] = [
    (AuditEventView, "serialization"),
    (AuditEventList, "serialization"),
]


def delete_operation(problem: ProblemOf, job_id: dict[str, Any]) -> dict[str, Any]:
    """The `delete` of /v1/jobs/{job_id} (api/openapi.py puts it beside the `get`)."""
    return {
        "summary": "Delete a finished job: its audio, transcript, artifacts, result and row",
        "parameters": [job_id, {**IDEMPOTENCY_KEY, "description": "Retry-safe deletion"}],
        "responses": {
            "204": {"description": "Deleted (an audit event records it)"},
            "400": problem("invalid_idempotency_key"),
            "401": problem("Missing or invalid API key"),
            "404": problem("No such job (or another tenant's, or already deleted)"),
            "409": with_headers(
                problem("job_in_progress: not finished yet; or idempotency_in_flight"),
                RETRY_AFTER,
            ),
            "422": problem("idempotency_conflict: the key was used for another request"),
        },
    }


def audit_paths(ok: Ok, problem: ProblemOf) -> dict[str, Any]:
    def query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        schema = schema or {"type": "string"}
        return {"name": name, "in": "query", "required": False, "schema": schema} | {
            "description": description
        }

    listing = {
        "summary": "The tenant's deletions and retention purges, newest first",
        "parameters": [
            query("job_id", "Only this job's events", {"type": "string", "pattern": _TEXT}),
            query("action", "The kind of event", {"type": "string", "enum": list(ACTIONS)}),
            query("cursor", "`next_cursor` of the previous page"),
            query(
                "limit", "1 … 100, default 20", {"type": "integer", "minimum": 1, "maximum": 100}
            ),
        ],
        "responses": {
            "200": ok(AuditEventList, "A page of audit events"),
            "400": problem("Bad filter, limit or cursor"),
            "401": problem("Missing or invalid API key"),
        },
    }
    return {"/v1/audit-events": {"get": listing}}
