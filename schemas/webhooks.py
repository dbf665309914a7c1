"""Request and response bodies of `/v1/webhooks/…` (the OpenAPI document is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from schemas.api import ClientInput

EventType = Literal["job.completed", "job.failed", "batch.completed", "endpoint.disabled"]
URL_FIELD = Field(
    max_length=2048, description="https:// URL; must resolve to public addresses only"
)


class EndpointIn(ClientInput):
    url: str = URL_FIELD
    description: str = Field(default="", max_length=500)
    event_types: list[EventType] = Field(
        default_factory=list, max_length=10, description="Empty: every event type"
    )


class EndpointPatch(ClientInput):
    url: str | None = Field(default=None, max_length=2048)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[EventType] | None = Field(default=None, max_length=10)
    enabled: bool | None = Field(default=None, description="true re-enables a disabled endpoint")


class EndpointView(BaseModel):
    id: str
    object: str = "webhook_endpoint"
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until then deliveries carry a signature with the previous secret too"
    )
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointView):
    secret: str = Field(description="whsec_…: shown once, verify signatures with it")


class EndpointList(BaseModel):
    object: str = "list"
    data: list[EndpointView]


class SecretView(BaseModel):
    """A new signing secret, shown once; the previous one keeps signing until the given time."""

    object: str = "webhook_secret"
    secret: str
    previous_secret_expires_at: datetime | None


class AttemptView(BaseModel):
    number: int
    url: str
    started_at: datetime
    status_code: int | None
    latency_ms: int | None
    error: str | None
    response_excerpt: str | None


class DeliveryView(BaseModel):
    id: str = Field(description="msg_…: the webhook-id header, the same on every attempt")
    object: str = "webhook_delivery"
    event_type: str
    event_id: str
    job_id: str | None
    endpoint_id: str | None
    target: Literal["endpoint", "callback"]
    url: str
    state: Literal["pending", "delivering", "succeeded", "failed", "dead"]
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptView]


class DeliveryList(BaseModel):
    object: str = "list"
    data: list[DeliveryView]
