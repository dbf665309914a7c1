"""OpenAPI pieces for idempotent submission, duplicate detection, ETags and the job events stream."""

from __future__ import annotations

from typing import Any

from api.dedupe import DUPLICATE_OF
from api.idempotency import HEADER, REPLAYED
from schemas.api import JobView

IDEMPOTENCY_KEY = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Retry-safe submission: the first response is stored (≥ 24 h) and replayed",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of a status document you have: 304 while it is unchanged",
    "schema": {"type": "string"},
}
LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "description": "Resume after this event (sent by EventSource on reconnection)",
    "schema": {"type": "string"},
}
_REPLAYED = {
    REPLAYED: {"description": "`true` on a replayed response", "schema": {"type": "string"}}
}
ETAG = {"ETag": {"description": "Strong validator of the document", "schema": {"type": "string"}}}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before polling again",
        "schema": {"type": "integer"},
    }
}


def with_headers(response: dict[str, Any], headers: dict[str, Any]) -> dict[str, Any]:
    return {**response, "headers": {**response.get("headers", {}), **headers}}


def submit_responses(ok: Any, problem: Any) -> dict[str, Any]:
    """Responses of `POST /v1/jobs` added by idempotency and duplicate detection."""
    location = {"Location": {"schema": {"type": "string"}}}
    accepted = with_headers(ok(JobView, "Accepted; poll the Location"), {**location, **_REPLAYED})
    duplicate = with_headers(
        ok(JobView, "Duplicate content (tenant option): the existing job"),
        {**location, DUPLICATE_OF: {"schema": {"type": "string"}}, **_REPLAYED},
    )
    return {
        "202": accepted,
        "200": duplicate,
        "400": problem("Malformed body, or invalid_idempotency_key"),
        "409": with_headers(
            problem("idempotency_in_flight: the first request with this key is still running"),
            {"Retry-After": {"schema": {"type": "integer"}}},
        ),
        "422": problem(
            "Invalid options or transcript, idempotency_conflict (key reused), or too_long: a "
            "transcript or recording over a capacity limit (`setting`, `limit`, `measured`)"
        ),
    }


def events_path(problem: Any, errors: dict[str, Any], job_id: dict[str, Any]) -> dict[str, Any]:
    def event(names: dict[str, Any], model: str) -> dict[str, Any]:
        data = {"type": "string", "contentMediaType": "application/json"}
        data["contentSchema"] = {"$ref": f"#/components/schemas/{model}"}  # type: ignore[assignment]
        properties = {"event": names, "id": {"type": "string"}, "data": data}
        return {"type": "object", "required": ["event", "id", "data"], "properties": properties}

    stream = {
        "description": "Each event: `event: stage` (data: JobProgress), then `event: completed` "
        "or `failed` (data: JobView); every event has an `id:`; `: heartbeat` comments while idle",
        "oneOf": [
            event({"const": "stage"}, "JobProgress"),
            event({"enum": ["completed", "failed"]}, "JobView"),
        ],
    }
    return {
        "get": {
            "summary": "Server-Sent Events of the job's progress, ending when it is terminal",
            "parameters": [job_id, LAST_EVENT_ID],
            "responses": {
                "200": {
                    "description": "An event stream (reconnect with Last-Event-ID when it closes)",
                    "content": {"text/event-stream": {"schema": stream}},
                },
                "204": {"description": "The job is terminal and Last-Event-ID is its final event"},
                "503": problem("Too many streams open on this server: poll instead, or retry"),
                **errors,
            },
        }
    }
