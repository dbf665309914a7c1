"""`GET /metrics` (Prometheus text format, outside /v1) and the request count and latency of every
route, labelled by route template so a job id never becomes a label value."""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, Flask, Response, g, request

from api.problems import ApiProblem
from api.state import state
from pipeline import metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def exposition() -> Response:
    _authorize()
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


def _authorize() -> None:
    """Open unless METRICS_TOKEN is set; then a Bearer token equal to it (compared in constant time)."""
    token = state().settings.metrics_token
    if token is None:
        return
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    presented = value.strip().encode() if scheme.lower() == "bearer" else b""
    if not hmac.compare_digest(presented, token.get_secret_value().encode()):
        raise ApiProblem(
            401,
            "unauthenticated",
            "the metrics token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _started() -> None:
    g.metrics_started = time.perf_counter()


def _observed(response: Response) -> Response:
    # Unmatched paths (404s, scans) share one label value: a label per path would be unbounded.
    route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    metrics.HTTP_REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    began: float | None = g.get("metrics_started")
    if began is not None:
        elapsed = time.perf_counter() - began
        metrics.HTTP_LATENCY.labels(route, request.method).observe(elapsed)
    return response


def init_app(app: Flask) -> None:
    app.before_request(_started)
    app.after_request(_observed)
    app.register_blueprint(bp)
