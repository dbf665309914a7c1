"""Webhook rows → public documents (endpoints never show their secret; deliveries show attempts)."""

from __future__ import annotations

from typing import Literal, cast

from pipeline.db.webhook_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from schemas.webhooks import AttemptView, DeliveryView, EndpointView

Target = Literal["endpoint", "callback"]
State = Literal["pending", "delivering", "succeeded", "failed", "dead"]


def endpoint_view(endpoint: WebhookEndpoint) -> EndpointView:
    return EndpointView(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types),
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        disabled_at=endpoint.disabled_at,
        failing_since=endpoint.failing_since,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def delivery_view(row: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        event_type=row.event_type,
        event_id=row.event_id,
        job_id=row.job_id,
        endpoint_id=row.endpoint_id,
        target=cast(Target, row.target),
        url=row.url,
        state=cast(State, row.state),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_status=row.last_status,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        attempt_log=[_attempt_view(a) for a in attempts],
    )


def _attempt_view(attempt: WebhookAttempt) -> AttemptView:
    return AttemptView(
        number=attempt.number,
        url=attempt.url,
        started_at=attempt.started_at,
        status_code=attempt.status_code,
        latency_ms=attempt.latency_ms,
        error=attempt.error,
        response_excerpt=attempt.response_excerpt,
    )
