"""The Flask intake API: `create_app()` builds it; blueprints for jobs, direct uploads, webhooks,
tenants, admin, health and docs."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.requests import ApiRequest
from pipeline.logs import configure_logging
from pipeline.settings import Settings, get_settings
from workers.app import bound_publishing


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The application factory. `test_config` may carry a `SETTINGS` object to use instead of env."""
    app = Flask(__name__)
    app.request_class = ApiRequest  # empty query values count as absent
    app.config.from_mapping(test_config or {})
    settings: Settings = app.config.get("SETTINGS") or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    # A whole request body is never read into memory by Flask; this is a second line of defence.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes + 1024 * 1024
    app.json.sort_keys = False  # type: ignore[attr-defined]

    from api import (
        admin,
        audit,
        batches,
        direct_uploads,
        events,
        health,
        jobs,
        metrics,
        openapi,
        problems,
        provider_callbacks,
        rate_limits,
        rescore,
        state,
        tenant_self,
        webhooks,
    )

    @app.before_request
    def _limit_json_bodies() -> None:
        # JSON is parsed whole, so it gets a far smaller limit than streamed uploads.
        if request.mimetype == "application/json":
            request.max_content_length = settings.max_json_bytes

    @app.errorhandler(RequestEntityTooLarge)
    def _body_too_large(_exc: RequestEntityTooLarge) -> Response:
        # Bodies read whole (JSON, YAML configurations) are held to MAX_JSON_BYTES; the rest stream.
        if request.max_content_length == settings.max_json_bytes:
            return problems.problem_response(
                problems.too_large("a JSON (or YAML) body", settings.max_json_bytes)
            )
        return problems.problem_response(problems.too_large("an upload", settings.max_upload_bytes))

    # Submissions publish right after their commit: bounded, so a frozen broker cannot hang them.
    bound_publishing(settings.publish_timeout_s)
    state.init_app(app, settings)
    problems.init_app(app)
    rate_limits.init_app(app, settings)
    metrics.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(batches.bp)
    app.register_blueprint(direct_uploads.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(provider_callbacks.bp)
    app.register_blueprint(rescore.bp)
    app.register_blueprint(tenant_self.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(audit.bp)
    return app
