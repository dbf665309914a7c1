"""The `/v1/webhooks/…` part of the OpenAPI document (api/openapi.py merges it in)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from schemas.webhooks import (
    DeliveryList,
    DeliveryView,
    EndpointCreated,
    EndpointIn,
    EndpointList,
    EndpointPatch,
    EndpointView,
    SecretView,
)

_ID = "^[a-z]{2,4}_[0-9a-z]{26}$"  # api/webhooks.py's ID
Mode = Literal["validation", "serialization"]
Ok = Callable[[type[BaseModel], str], dict[str, Any]]
ProblemOf = Callable[[str], dict[str, Any]]
Ref = Callable[[type[BaseModel]], dict[str, str]]

SCHEMAS: list[tuple[type[BaseModel], Mode]] = [
    (EndpointIn, "validation"),
    (EndpointPatch, "validation"),
    (EndpointView, "serialization"),
    (EndpointCreated, "serialization"),
    (EndpointList, "serialization"),
    (SecretView, "serialization"),
    (DeliveryView, "serialization"),
    (DeliveryList, "serialization"),
]


def _param(name: str, where: str = "path") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": {"type": "string"}}


@dataclass(frozen=True)
class Helpers:
    """api/openapi.py's builders, handed in (this module must not import that one)."""

    ok: Ok
    problem: ProblemOf
    ref: Ref

    def body(self, model: type[BaseModel]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": self.ref(model)}}}

    def auth(self) -> dict[str, Any]:
        return {"401": self.problem("Missing or invalid API key")}

    def missing(self, what: str) -> dict[str, Any]:
        return {**self.auth(), "404": self.problem(f"No such {what} (or another tenant's)")}


def webhook_paths(ok: Ok, problem: ProblemOf, ref: Ref) -> dict[str, Any]:
    """Paths of the webhook API, built with api/openapi.py's `_ok`, `_problem` and `_ref`."""
    h = Helpers(ok, problem, ref)
    return {
        "/v1/webhooks/endpoints": _endpoints(h),
        "/v1/webhooks/endpoints/{endpoint_id}": _endpoint(h),
        **_endpoint_actions(h),
        **_delivery_paths(h),
    }


def _endpoints(h: Helpers) -> dict[str, Any]:
    bad_url = h.problem("invalid_webhook_url, unsafe_webhook_url or validation_error")
    create = {
        "summary": "Register an endpoint; the answer shows its signing secret once",
        "requestBody": h.body(EndpointIn),
        "responses": {"201": h.ok(EndpointCreated, "Created"), "422": bad_url, **h.auth()},
    }
    listing = {
        "summary": "List endpoints",
        "responses": {"200": h.ok(EndpointList, "Endpoints"), **h.auth()},
    }
    return {"post": create, "get": listing}


def _endpoint(h: Helpers) -> dict[str, Any]:
    one, missing = [_param("endpoint_id")], h.missing("endpoint")
    bad_url = h.problem("invalid_webhook_url, unsafe_webhook_url or validation_error")
    return {
        "get": {
            "summary": "An endpoint",
            "parameters": one,
            "responses": {"200": h.ok(EndpointView, "The endpoint"), **missing},
        },
        "patch": {
            "summary": "Change url, description, event_types or enabled",
            "parameters": one,
            "requestBody": h.body(EndpointPatch),
            "responses": {"200": h.ok(EndpointView, "Updated"), "422": bad_url, **missing},
        },
        "delete": {
            "summary": "Delete an endpoint (its delivery log stays)",
            "parameters": one,
            "responses": {"204": {"description": "Deleted"}, **missing},
        },
    }


def _endpoint_actions(h: Helpers) -> dict[str, Any]:
    one, missing = [_param("endpoint_id")], h.missing("endpoint")
    rotate = {
        "summary": "Rotate the secret; the previous one keeps signing during the overlap",
        "parameters": one,
        "responses": {"200": h.ok(SecretView, "The new secret, shown once"), **missing},
    }
    ping = {
        "summary": "Send a webhook.test event to this endpoint",
        "parameters": one,
        "responses": {"202": h.ok(DeliveryView, "Queued"), **missing},
    }
    return {
        "/v1/webhooks/endpoints/{endpoint_id}/rotate-secret": {"post": rotate},
        "/v1/webhooks/endpoints/{endpoint_id}/test": {"post": ping},
    }


def _delivery_paths(h: Helpers) -> dict[str, Any]:
    ok, problem, auth, missing = h.ok, h.problem, h.auth(), h.missing("delivery")
    one, ids = [_param("delivery_id")], ("job_id", "endpoint_id")
    listing = {
        "summary": "The delivery log: deliveries with their attempts, newest first",
        "parameters": [
            *({**_param(n, "query"), "schema": {"type": "string", "pattern": _ID}} for n in ids),
            {
                **_param("limit", "query"),
                "schema": {"type": "integer", "minimum": 1, "maximum": 100},
            },
        ],
        "responses": {"200": ok(DeliveryList, "Deliveries"), "400": problem("Bad filter"), **auth},
    }
    redeliver = {
        "summary": "Send the same event (same webhook-id) again, with a fresh retry budget",
        "parameters": one,
        "responses": {
            "202": ok(DeliveryView, "Queued"),
            "409": problem("cannot_redeliver: endpoint deleted or disabled"),
            **missing,
        },
    }
    callback_secret = {
        "summary": "Create or rotate the tenant secret that signs per-job callback_url deliveries",
        "responses": {
            "201": ok(SecretView, "Created, shown once"),
            "200": ok(SecretView, "Rotated, shown once"),
            **auth,
        },
    }
    return {
        "/v1/webhooks/deliveries": {"get": listing},
        "/v1/webhooks/deliveries/{delivery_id}": {
            "get": {
                "summary": "A delivery and its attempts",
                "parameters": one,
                "responses": {"200": ok(DeliveryView, "The delivery"), **missing},
            }
        },
        "/v1/webhooks/deliveries/{delivery_id}/redeliver": {"post": redeliver},
        "/v1/webhooks/callback-secret": {"post": callback_secret},
    }
