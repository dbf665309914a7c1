"""RFC 9457 problem details: every error response is `application/problem+json` with a stable code.

Bad input is never a 500, and no vendor or database message ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from pipeline.errors import PermanentError, TooLong, TransientError

log = logging.getLogger(__name__)

TYPE_BASE = "https://callintel.dev/problems/"
_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


class ApiProblem(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.title = title or code.replace("_", " ").capitalize()
        self.headers = headers or {}
        self.errors = errors
        self.extensions = extensions or {}  # RFC 9457 extension members (`limit`, `measured` …)


def problem_response(problem: ApiProblem) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_BASE + problem.code,
        "title": problem.title,
        "status": problem.status,
        "code": problem.code,
        "detail": problem.detail,
    }
    if problem.errors is not None:
        body["errors"] = problem.errors
    body.update(problem.extensions)
    response = jsonify(body)
    response.status_code = problem.status
    response.mimetype = "application/problem+json"
    response.headers.update(problem.headers)
    return response


def too_large(what: str, limit: int) -> ApiProblem:
    """413 naming the limit that was hit, e.g. too_large("a form field", 262144)."""
    return ApiProblem(
        413,
        "too_large",
        f"{what} is limited to {limit} bytes ({_size(limit)})",
        extensions={"limit": limit, "unit": "bytes"},
    )


def too_long(exc: TooLong) -> ApiProblem:
    """422 for an input beyond a capacity limit, naming the limit (`setting`, `limit`) and what
    was measured (`measured`, in `unit`)."""
    members = {"setting": exc.setting, "limit": exc.limit, "measured": exc.measured}
    return ApiProblem(422, "too_long", exc.message, extensions={**members, "unit": exc.unit})


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"


def validation_problem(exc: ValidationError) -> ApiProblem:
    errors = [
        {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    return ApiProblem(422, "validation_error", "the request body is not valid", errors=errors)


def _http(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = _HTTP_CODES.get(status, "http_error")
    response = problem_response(ApiProblem(status, code, exc.description or exc.name))
    if exc.code == 405 and exc.get_headers():
        response.headers["Allow"] = dict(exc.get_headers()).get("Allow", "")
    return response


def _unavailable(exc: Exception) -> Response:
    log.warning("dependency unavailable: %s", type(exc).__name__)
    detail = "a backing service is unavailable; retry shortly"
    problem = ApiProblem(503, "service_unavailable", detail, headers={"Retry-After": "5"})
    return problem_response(problem)


def _unstorable(exc: Exception) -> Response:
    # Input validation should have caught it; the database is the last line, and it is bad input.
    log.warning("the database refused a value: %s", type(exc).__name__)
    return problem_response(
        ApiProblem(400, "invalid_request", "a value in the request cannot be stored")
    )


# Domain errors a view can meet while reading stored data, as the problems clients see.
_PERMANENT: dict[str, ApiProblem] = {
    "tenant_config_invalid": ApiProblem(
        409, "tenant_config_invalid", "the stored configuration is not valid; PUT a valid one"
    ),
    "config_version_missing": ApiProblem(404, "not_found", "no such configuration version"),
    "tenant_missing": ApiProblem(404, "not_found", "no such tenant"),
}


def _permanent(exc: PermanentError) -> Response:
    problem = _PERMANENT.get(exc.code)
    return problem_response(problem) if problem is not None else _unexpected(exc)


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem_response(ApiProblem(500, "internal_error", "an internal error occurred"))


def init_app(app: Flask) -> None:
    app.register_error_handler(ApiProblem, problem_response)
    app.register_error_handler(ValidationError, lambda e: problem_response(validation_problem(e)))
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(DataError, _unstorable)
    app.register_error_handler(OperationalError, _unavailable)
    app.register_error_handler(DBAPIError, _unavailable)
    app.register_error_handler(TransientError, _unavailable)
    app.register_error_handler(TooLong, lambda e: problem_response(too_long(e)))
    app.register_error_handler(PermanentError, _permanent)
    app.register_error_handler(Exception, _unexpected)
