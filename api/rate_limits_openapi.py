"""The rate-limit part of the OpenAPI document: a 429 and the RateLimit-* headers on each limited
operation (api/openapi.py applies it to the merged paths)."""

from __future__ import annotations

from typing import Any

from api.rate_limits import LimitClass
from api.webhook_openapi import ProblemOf

# The operations `@rate_limited` guards, and their class; a test holds this to the routes.
LIMITED: dict[tuple[str, str], LimitClass] = {
    ("/v1/jobs", "post"): "submit",
    ("/v1/batches/{batch_id}/items", "post"): "submit",
    ("/v1/uploads", "post"): "upload",
    ("/v1/jobs/{job_id}/rescore", "post"): "rescore",
    ("/v1/rescore", "post"): "rescore",
    ("/v1/batches", "post"): "batch",
}

_INT = {"type": "integer", "minimum": 0}
HEADERS: dict[str, Any] = {
    "RateLimit-Limit": {"description": "Units the bucket holds (the burst)", "schema": _INT},
    "RateLimit-Remaining": {"description": "Units left now", "schema": _INT},
    "RateLimit-Reset": {"description": "Seconds until the bucket is full again", "schema": _INT},
    "RateLimit-Policy": {
        "description": "`<burst>;w=<seconds to refill it>` (IETF httpapi-ratelimit-headers)",
        "schema": {"type": "string"},
    },
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Whole seconds until the request would be accepted (at least 1)",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def with_rate_limits(paths: dict[str, Any], problem: ProblemOf) -> dict[str, Any]:
    """`paths` with a 429 on each limited operation and the headers on its other answers (not
    the 401: a stranger is not charged). Builds new dicts: response objects may be shared."""
    result = dict(paths)
    for (path, method), name in LIMITED.items():
        operation = result[path][method]
        responses = {
            code: response if code == "401" else _with_headers(response, HEADERS)
            for code, response in operation["responses"].items()
        }
        refused = problem(f"rate_limited: over this tenant's `{name}` rate limit")
        responses["429"] = _with_headers(refused, {**_RETRY_AFTER, **HEADERS})
        result[path] = {**result[path], method: {**operation, "responses": responses}}
    return result


def _with_headers(response: dict[str, Any], headers: dict[str, Any]) -> dict[str, Any]:
    return {**response, "headers": {**response.get("headers", {}), **headers}}
