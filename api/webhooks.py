"""`/v1/webhooks`: tenants' endpoints (CRUD, secret rotation, test ping), the delivery log, redelivery,
and the tenant secret that signs per-job `callback_url` deliveries.

Another tenant's endpoint or delivery is a 404 byte-identical to a missing one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from flask import Blueprint, Response, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from api.auth import Caller, require_caller
from api.idempotency import idempotent
from api.intake import strict_json
from api.problems import ApiProblem, validation_problem
from api.responses import json_response
from api.state import state
from api.webhook_presenters import delivery_view as _delivery_view
from api.webhook_presenters import endpoint_view as _endpoint_view
from api.webhook_urls import url_check
from pipeline.db.session import transaction
from pipeline.db.webhook_models import WebhookDelivery, WebhookEndpoint
from pipeline.webhooks import deliveries, endpoints, log
from pipeline.webhooks.endpoints import UnknownEventType
from pipeline.webhooks.errors import InvalidWebhookUrl, UnsafeWebhookUrl
from schemas.webhooks import (
    DeliveryList,
    EndpointCreated,
    EndpointIn,
    EndpointList,
    EndpointPatch,
    SecretView,
)

bp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks")
ID = re.compile(r"[a-z]{2,4}_[0-9a-z]{26}")
Body = TypeVar("Body", bound=BaseModel)


@bp.post("/endpoints")
@idempotent()
def create_endpoint() -> Response:
    caller, app = require_caller(), state()
    given = _body(EndpointIn)
    with _url_errors(), transaction(app.sessions) as session:
        endpoint = endpoints.create_endpoint(
            session,
            caller.tenant_id,
            url=given.url,
            check=url_check(app),
            description=given.description,
            event_types=given.event_types,
        )
        view = EndpointCreated(**_endpoint_view(endpoint).model_dump(), secret=endpoint.secret)
    response = json_response(view, status=201)
    response.headers["Location"] = f"/v1/webhooks/endpoints/{endpoint.id}"
    return response


@bp.get("/endpoints")
def list_endpoints() -> Response:
    caller, app = require_caller(), state()
    with app.sessions() as session:
        rows = endpoints.list_endpoints(session, caller.tenant_id)
        return json_response(EndpointList(data=[_endpoint_view(e) for e in rows]))


@bp.get("/endpoints/<endpoint_id>")
def get_endpoint(endpoint_id: str) -> Response:
    caller, app = require_caller(), state()
    with app.sessions() as session:
        return json_response(_endpoint_view(_owned_endpoint(session, caller, endpoint_id)))


@bp.patch("/endpoints/<endpoint_id>")
def update_endpoint(endpoint_id: str) -> Response:
    caller, app = require_caller(), state()
    given = _body(EndpointPatch)
    with _url_errors(), transaction(app.sessions) as session:
        endpoint = endpoints.update_endpoint(
            session,
            _owned_endpoint(session, caller, endpoint_id),
            check=url_check(app),
            url=given.url,
            description=given.description,
            event_types=given.event_types,
            enabled=given.enabled,
        )
        return json_response(_endpoint_view(endpoint))


@bp.delete("/endpoints/<endpoint_id>")
def delete_endpoint(endpoint_id: str) -> Response:
    caller, app = require_caller(), state()
    with transaction(app.sessions) as session:
        endpoints.delete_endpoint(session, _owned_endpoint(session, caller, endpoint_id))
    return Response(status=204)


@bp.post("/endpoints/<endpoint_id>/rotate-secret")
@idempotent()
def rotate_secret(endpoint_id: str) -> Response:
    caller, app = require_caller(), state()
    overlap = app.settings.webhook_secret_overlap_s
    with transaction(app.sessions) as session:
        endpoint = _owned_endpoint(session, caller, endpoint_id)
        secret = endpoints.rotate_secret(session, endpoint, overlap_s=overlap)
        expires = endpoint.previous_secret_expires_at
    return json_response(SecretView(secret=secret, previous_secret_expires_at=expires))


@bp.post("/endpoints/<endpoint_id>/test")
@idempotent()
def ping_endpoint(endpoint_id: str) -> Response:
    caller, app = require_caller(), state()
    with transaction(app.sessions) as session:
        endpoint = _owned_endpoint(session, caller, endpoint_id)
        row = deliveries.enqueue_ping(session, endpoint)
        session.flush()
        view = _delivery_view(row, [])
    return json_response(view, status=202)


@bp.post("/callback-secret")
@idempotent()
def rotate_callback_secret() -> Response:
    """Create (first call) or rotate the tenant's secret for per-job `callback_url` deliveries."""
    caller, app = require_caller(), state()
    overlap = app.settings.webhook_secret_overlap_s
    with transaction(app.sessions) as session:
        row = endpoints.rotate_callback_secret(session, caller.tenant_id, overlap_s=overlap)
        view = SecretView(
            secret=row.secret, previous_secret_expires_at=row.previous_secret_expires_at
        )
    return json_response(view, status=201 if view.previous_secret_expires_at is None else 200)


@bp.get("/deliveries")
def list_deliveries() -> Response:
    caller, app = require_caller(), state()
    job_id, endpoint_id = _id_arg("job_id"), _id_arg("endpoint_id")
    limit = _limit()
    with app.sessions() as session:
        rows = log.find_deliveries(
            session, caller.tenant_id, job_id=job_id, endpoint_id=endpoint_id, limit=limit
        )
        attempts = log.attempts_of(session, [r.id for r in rows])
        data = [_delivery_view(r, attempts[r.id]) for r in rows]
    return json_response(DeliveryList(data=data))


@bp.get("/deliveries/<delivery_id>")
def get_delivery(delivery_id: str) -> Response:
    caller, app = require_caller(), state()
    with app.sessions() as session:
        row = _owned_delivery(session, caller, delivery_id)
        return json_response(_delivery_view(row, log.attempts_of(session, [row.id])[row.id]))


@bp.post("/deliveries/<delivery_id>/redeliver")
@idempotent()
def redeliver(delivery_id: str) -> Response:
    caller, app = require_caller(), state()
    with transaction(app.sessions) as session:
        row = _owned_delivery(session, caller, delivery_id)
        try:
            deliveries.redeliver(session, row)
        except deliveries.CannotRedeliver as exc:
            raise ApiProblem(409, exc.code, str(exc)) from exc
        view = _delivery_view(row, log.attempts_of(session, [row.id])[row.id])
    return json_response(view, status=202)


def _owned_endpoint(session: Session, caller: Caller, endpoint_id: str) -> WebhookEndpoint:
    endpoint = endpoints.get_endpoint(session, caller.tenant_id, endpoint_id)
    if endpoint is None:
        raise ApiProblem(404, "not_found", "no such webhook endpoint")
    return endpoint


def _owned_delivery(session: Session, caller: Caller, delivery_id: str) -> WebhookDelivery:
    row = log.get_delivery(session, caller.tenant_id, delivery_id)
    if row is None:
        raise ApiProblem(404, "not_found", "no such webhook delivery")
    return row


@contextmanager
def _url_errors() -> Iterator[None]:
    """The domain's refusals as problems with their stable codes."""
    try:
        yield
    except (InvalidWebhookUrl, UnsafeWebhookUrl) as exc:
        raise ApiProblem(422, exc.code, exc.message) from exc
    except UnknownEventType as exc:
        raise ApiProblem(422, exc.code, str(exc)) from exc


def _body(model: type[Body]) -> Body:
    if request.mimetype != "application/json":
        raise ApiProblem(415, "unsupported_media_type", "send a JSON body (application/json)")
    try:
        return model.model_validate(strict_json(request.get_data()))
    except ValidationError as exc:
        raise validation_problem(exc) from exc


def _id_arg(name: str) -> str | None:
    value = request.args.get(name)
    if value is not None and not ID.fullmatch(value):
        raise ApiProblem(400, "invalid_request", f"{name} is not a valid id")
    return value


def _limit() -> int:
    raw = request.args.get("limit", "50")
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= int(raw) <= 100:
        raise ApiProblem(400, "invalid_request", "limit must be an integer in [1, 100]")
    return int(raw)
