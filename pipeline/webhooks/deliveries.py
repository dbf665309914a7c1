"""The durable delivery queue: enqueue events, claim due rows, start an attempt, record its outcome.

Every function works inside the caller's transaction. Rows are enqueued in the same transaction as
the state they announce (a job's final state), so an event exists iff that state committed. Waits
live in `next_attempt_at`; a claimed row carries a lease, so a lost task only delays its delivery.
An attempt starts with a compare-and-set on `attempts`: a duplicated task message sends nothing.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db.models import Job, utcnow
from pipeline.db.webhook_models import (
    DEAD,
    DELIVERING,
    FAILED,
    OPEN_STATES,
    PENDING,
    SUCCEEDED,
    TARGET_CALLBACK,
    TARGET_ENDPOINT,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from pipeline.errors import PipelineError
from pipeline.ids import new_id
from pipeline.settings import Settings
from pipeline.webhooks import endpoints, events
from pipeline.webhooks.ports import WebhookRequest, WebhookResponse
from pipeline.webhooks.schedule import first_delay, next_delay

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Claim:
    """A due delivery handed to one sender task; `attempt` is the number that attempt will carry."""

    delivery_id: str
    attempt: int


def subscribers(
    session: Session, tenant_id: str, event_type: str, *, exclude: str | None = None
) -> list[WebhookEndpoint]:
    """The tenant's enabled endpoints whose filter takes `event_type` (an empty filter takes all)."""
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.enabled.is_(True)
    )
    rows = session.scalars(query.order_by(WebhookEndpoint.created_at, WebhookEndpoint.id))
    return [
        e for e in rows if e.id != exclude and (not e.event_types or event_type in e.event_types)
    ]


def enqueue_event(
    session: Session,
    tenant_id: str,
    event: dict[str, Any],
    *,
    settings: Settings,
    job_id: str | None = None,
    callback_url: str | None = None,
    exclude: str | None = None,
) -> list[WebhookDelivery]:
    """One delivery per subscribed endpoint, plus one to `callback_url` when given."""
    due = utcnow() + timedelta(seconds=first_delay(settings.webhook_retry_schedule_s))
    targets: list[tuple[str, str | None, str]] = [
        (TARGET_ENDPOINT, e.id, e.url)
        for e in subscribers(session, tenant_id, event["type"], exclude=exclude)
    ]
    if callback_url:
        targets.append((TARGET_CALLBACK, None, callback_url))
    rows = [
        WebhookDelivery(
            id=new_id("msg"),
            tenant_id=tenant_id,
            target=target,
            endpoint_id=endpoint_id,
            url=url,
            event_type=event["type"],
            event_id=event["id"],
            job_id=job_id,
            payload=event,
            state=PENDING,
            attempts=0,
            retry_base=0,
            next_attempt_at=due,
        )
        for target, endpoint_id, url in targets
    ]
    session.add_all(rows)
    return rows


def enqueue_job_event(
    session: Session, job: Job, event_type: str, *, settings: Settings
) -> list[WebhookDelivery]:
    """`job.completed` / `job.failed` for the job's tenant; called in the job's final transaction."""
    event = events.job_event(event_type, job, base_url=settings.public_base_url)
    return enqueue_event(
        session,
        job.tenant_id,
        event,
        job_id=job.id,
        callback_url=job.callback_url,
        settings=settings,
    )


def enqueue_ping(session: Session, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `webhook.test` event for this endpoint only, whatever its filter (and even if disabled)."""
    event = events.ping_event(endpoint.id)
    row = WebhookDelivery(
        id=new_id("msg"),
        tenant_id=endpoint.tenant_id,
        target=TARGET_ENDPOINT,
        endpoint_id=endpoint.id,
        url=endpoint.url,
        event_type=event["type"],
        event_id=event["id"],
        payload=event,
        state=PENDING,
        attempts=0,
        retry_base=0,
        next_attempt_at=utcnow(),
    )
    session.add(row)
    return row


def claim_due(session: Session, *, limit: int, lease_s: float) -> list[Claim]:
    """Lease up to `limit` due rows (FOR UPDATE SKIP LOCKED: concurrent dispatchers never collide)."""
    now = utcnow()
    rows = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.state.in_(OPEN_STATES), WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.state = DELIVERING
        row.next_attempt_at = now + timedelta(seconds=lease_s)
    return [Claim(row.id, row.attempts + 1) for row in rows]


def begin_attempt(session: Session, claim: Claim, *, lease_s: float) -> WebhookRequest | None:
    """Count the attempt and return what to send, or None when there is nothing (more) to send."""
    row = session.get(WebhookDelivery, claim.delivery_id, with_for_update=True)
    if row is None or row.state != DELIVERING or row.attempts != claim.attempt - 1:
        return None  # a duplicate message, or the row moved on
    now = utcnow()
    target = _target(session, row, now=now)
    if target is None:
        return None
    url, secrets = target
    row.attempts, row.url = claim.attempt, url
    row.next_attempt_at = now + timedelta(seconds=lease_s)
    body = json.dumps(row.payload, separators=(",", ":"), ensure_ascii=False)
    return WebhookRequest(msg_id=row.id, url=url, body=body, secrets=secrets, timestamp=now)


def _target(
    session: Session, row: WebhookDelivery, *, now: datetime
) -> tuple[str, tuple[str, ...]] | None:
    """Where to send and with which secrets; closes the row when its target is gone."""
    if row.target == TARGET_CALLBACK:
        secrets = endpoints.callback_secrets(session, row.tenant_id, now=now)
        if secrets:
            return row.url, secrets
        _close(row, DEAD, error="the tenant has no callback secret")
        return None
    endpoint = session.get(WebhookEndpoint, row.endpoint_id) if row.endpoint_id else None
    if endpoint is None:
        _close(row, DEAD, error="the endpoint was deleted")
        return None
    if not endpoint.enabled and row.event_type != events.WEBHOOK_TEST:
        _close(row, DEAD, error=f"the endpoint is disabled: {endpoint.disabled_reason}")
        return None
    return endpoint.url, endpoints.endpoint_secrets(endpoint, now=now)


def record_outcome(
    session: Session,
    claim: Claim,
    request: WebhookRequest,
    outcome: WebhookResponse | PipelineError,
    *,
    settings: Settings,
    rng: random.Random | None = None,
) -> str:
    """Log the attempt and move the delivery on; returns its state afterwards."""
    now = utcnow()
    row = session.get(WebhookDelivery, claim.delivery_id, with_for_update=True)
    if row is None:
        return DEAD
    session.add(_attempt(claim, request, outcome))
    if row.state != DELIVERING or row.attempts != claim.attempt:
        return row.state  # a later attempt owns the row now
    endpoint = session.get(WebhookEndpoint, row.endpoint_id) if row.endpoint_id else None
    if isinstance(outcome, WebhookResponse):
        row.last_status, row.last_error = outcome.status, None
        if 200 <= outcome.status < 300:
            _succeeded(row, endpoint, now=now)
            return row.state
        row.last_error = f"HTTP {outcome.status}"
        retry_after = outcome.retry_after_s
    else:
        row.last_status, row.last_error = None, _error_text(outcome)
        retry_after = None
    _failed(session, row, endpoint, retry_after, settings=settings, now=now, rng=rng)
    return row.state


def _attempt(
    claim: Claim, request: WebhookRequest, outcome: WebhookResponse | PipelineError
) -> WebhookAttempt:
    attempt = WebhookAttempt(
        delivery_id=claim.delivery_id,
        number=claim.attempt,
        url=request.url,
        started_at=request.timestamp,
    )
    if isinstance(outcome, WebhookResponse):
        attempt.status_code, attempt.latency_ms = outcome.status, outcome.latency_ms
        attempt.response_excerpt = outcome.excerpt
    else:
        attempt.error = _error_text(outcome)
    return attempt


def _error_text(error: PipelineError) -> str:
    return f"{error.code}: {error.message}"[:MAX_ERROR_CHARS]


def _succeeded(row: WebhookDelivery, endpoint: WebhookEndpoint | None, *, now: datetime) -> None:
    row.state, row.next_attempt_at, row.delivered_at = SUCCEEDED, None, now
    if endpoint is not None:
        endpoint.failing_since = None


def _failed(
    session: Session,
    row: WebhookDelivery,
    endpoint: WebhookEndpoint | None,
    retry_after: float | None,
    *,
    settings: Settings,
    now: datetime,
    rng: random.Random | None,
) -> None:
    """Schedule the next attempt or give up; 410 or a long failing streak disables the endpoint."""
    if row.last_status == 410:
        if endpoint is not None and endpoint.enabled:
            reason = "the endpoint answered 410 Gone"
            disable_endpoint(session, endpoint, reason=reason, now=now, settings=settings)
        _close(row, DEAD, error=row.last_error)
        return
    delay = next_delay(
        settings.webhook_retry_schedule_s,
        row.attempts - row.retry_base,
        jitter=settings.webhook_jitter,
        retry_after_s=retry_after,
        max_retry_after_s=settings.webhook_max_retry_after_s,
        rng=rng,
    )
    if delay is None:
        _close(row, DEAD, error=row.last_error)
    else:
        row.state, row.next_attempt_at = FAILED, now + timedelta(seconds=delay)
    if endpoint is None or not endpoint.enabled or row.event_type == events.WEBHOOK_TEST:
        return
    endpoint.failing_since = endpoint.failing_since or now
    if (now - endpoint.failing_since).total_seconds() >= settings.webhook_disable_after_s:
        since = endpoint.failing_since.isoformat(timespec="seconds")
        reason = f"every delivery failed since {since}"
        disable_endpoint(session, endpoint, reason=reason, now=now, settings=settings)
        _close(row, DEAD, error=row.last_error)


def _close(row: WebhookDelivery, state: str, *, error: str | None) -> None:
    row.state, row.next_attempt_at, row.last_error = state, None, error


def disable_endpoint(
    session: Session, endpoint: WebhookEndpoint, *, reason: str, now: datetime, settings: Settings
) -> None:
    """Disable it with a reason, close its queue, and tell the tenant's other endpoints."""
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason, now
    endpoint.updated_at = now
    session.flush()
    endpoints.close_open_deliveries(session, endpoint.id, reason=f"endpoint disabled: {reason}")
    event = events.endpoint_disabled_event(endpoint.id, url=endpoint.url, reason=reason, at=now)
    enqueue_event(session, endpoint.tenant_id, event, settings=settings, exclude=endpoint.id)
    log.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint.id, "reason": reason})


class CannotRedeliver(Exception):
    code = "cannot_redeliver"


def redeliver(session: Session, row: WebhookDelivery) -> WebhookDelivery:
    """Send the same event (same `webhook-id`) again now, with a fresh retry budget."""
    if row.target == TARGET_ENDPOINT:
        endpoint = session.get(WebhookEndpoint, row.endpoint_id) if row.endpoint_id else None
        if endpoint is None:
            raise CannotRedeliver("the endpoint of this delivery was deleted")
        if not endpoint.enabled:
            raise CannotRedeliver("the endpoint is disabled: enable it first")
    row.state, row.next_attempt_at, row.retry_base = PENDING, utcnow(), row.attempts
    return row
