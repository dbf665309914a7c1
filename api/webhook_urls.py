"""How the API judges webhook URLs: the SSRF policy from settings and a resolver (tests inject one)."""

from __future__ import annotations

from flask import current_app

from api.auth import Caller
from api.problems import ApiProblem
from api.state import AppState
from pipeline.webhooks import endpoints
from pipeline.webhooks.endpoints import UrlCheck
from pipeline.webhooks.errors import InvalidWebhookUrl, UnsafeWebhookUrl
from pipeline.webhooks.ssrf import Resolver, UrlPolicy, system_resolver, validate_url

RESOLVER_KEY = "WEBHOOK_RESOLVER"  # app config: a `(host, port) -> [addresses]` callable


def url_check(app: AppState) -> UrlCheck:
    resolver: Resolver = current_app.config.get(RESOLVER_KEY) or system_resolver
    return UrlCheck(UrlPolicy.from_settings(app.settings), resolver)


def check_callback_url(app: AppState, caller: Caller, url: str) -> None:
    """Intake's check of a per-job `callback_url`: the SSRF policy, and a callback secret to sign."""
    check = url_check(app)
    try:
        validate_url(url, check.policy, check.resolver)
    except (InvalidWebhookUrl, UnsafeWebhookUrl) as exc:
        raise ApiProblem(422, exc.code, f"callback_url: {exc.message}") from exc
    with app.sessions() as session:
        if not endpoints.has_callback_secret(session, caller.tenant_id):
            detail = "create the signing secret first: POST /v1/webhooks/callback-secret"
            raise ApiProblem(422, "callback_secret_missing", detail)
