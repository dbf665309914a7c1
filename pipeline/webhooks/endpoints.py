"""Tenants' webhook endpoints and signing secrets: create, read, update, delete, rotate.

Every function works inside the caller's transaction (none commits) and scopes by tenant: another
tenant's endpoint is the same None as a missing one. URLs pass the SSRF policy before they are stored.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pipeline.db.models import utcnow
from pipeline.db.webhook_models import (
    DEAD,
    OPEN_STATES,
    WebhookCallbackSecret,
    WebhookDelivery,
    WebhookEndpoint,
)
from pipeline.ids import new_id
from pipeline.webhooks.events import SUBSCRIBABLE
from pipeline.webhooks.ssrf import Resolver, UrlPolicy, validate_url

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SECRET_BYTES = 32  # Standard Webhooks: 24 to 64 random bytes


class UnknownEventType(ValueError):
    code = "invalid_event_types"


@dataclass(frozen=True)
class UrlCheck:
    """How URLs are judged here: the policy and the resolver (tests inject one)."""

    policy: UrlPolicy
    resolver: Resolver

    def __call__(self, url: str) -> str:
        validate_url(url, self.policy, self.resolver)
        return url


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signing_secrets(
    secret: str, previous: str | None, expires_at: datetime | None, *, now: datetime
) -> tuple[str, ...]:
    """The secrets that sign right now: the current one, plus the previous one while it overlaps."""
    if previous and expires_at is not None and expires_at > now:
        return (secret, previous)
    return (secret,)


def _event_types(given: Sequence[str]) -> list[str]:
    unknown = sorted(set(given) - set(SUBSCRIBABLE))
    if unknown:
        raise UnknownEventType(f"unknown event types {unknown}; known: {list(SUBSCRIBABLE)}")
    return list(dict.fromkeys(given))


def create_endpoint(
    session: Session,
    tenant_id: str,
    *,
    url: str,
    check: UrlCheck,
    description: str = "",
    event_types: Sequence[str] = (),
) -> WebhookEndpoint:
    """A new enabled endpoint with a fresh secret (the caller shows it once)."""
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        tenant_id=tenant_id,
        url=check(url),
        description=description,
        event_types=_event_types(event_types),
        enabled=True,
        secret=new_secret(),
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def get_endpoint(session: Session, tenant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.tenant_id != tenant_id:
        return None
    return endpoint


def list_endpoints(session: Session, tenant_id: str) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id)
    return list(session.scalars(query.order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)))


def update_endpoint(
    session: Session,
    endpoint: WebhookEndpoint,
    *,
    check: UrlCheck,
    url: str | None = None,
    description: str | None = None,
    event_types: Sequence[str] | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given. Re-enabling clears the reason and the failure clock."""
    now = utcnow()
    if url is not None:
        endpoint.url = check(url)
    if description is not None:
        endpoint.description = description
    if event_types is not None:
        endpoint.event_types = _event_types(event_types)
    if enabled is True and not endpoint.enabled:
        endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = True, None, None
        endpoint.failing_since = None
    elif enabled is False and endpoint.enabled:
        endpoint.enabled, endpoint.disabled_reason = False, "disabled by the tenant"
        endpoint.disabled_at = now
    endpoint.updated_at = now
    return endpoint


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    """Delete it; its undelivered events are closed, the delivery log stays (endpoint id cleared)."""
    close_open_deliveries(session, endpoint.id, reason="the endpoint was deleted")
    session.delete(endpoint)


def close_open_deliveries(session: Session, endpoint_id: str, *, reason: str) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.state.in_(OPEN_STATES))
        .values(state=DEAD, next_attempt_at=None, last_error=reason)
    )


def rotate_secret(session: Session, endpoint: WebhookEndpoint, *, overlap_s: float) -> str:
    """A new secret; the old one keeps signing (alongside) for `overlap_s`. Returns the new one."""
    now = utcnow()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + timedelta(seconds=overlap_s)
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    return endpoint.secret


def endpoint_secrets(endpoint: WebhookEndpoint, *, now: datetime) -> tuple[str, ...]:
    return signing_secrets(
        endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_expires_at, now=now
    )


def rotate_callback_secret(
    session: Session, tenant_id: str, *, overlap_s: float
) -> WebhookCallbackSecret:
    """Create the tenant's callback secret, or rotate it (the old one overlaps for `overlap_s`)."""
    now = utcnow()
    row = session.get(WebhookCallbackSecret, tenant_id, with_for_update=True)
    if row is None:
        row = WebhookCallbackSecret(tenant_id=tenant_id, secret=new_secret())
        session.add(row)
        return row
    row.previous_secret, row.secret = row.secret, new_secret()
    row.previous_secret_expires_at = now + timedelta(seconds=overlap_s)
    row.updated_at = now
    return row


def callback_secrets(session: Session, tenant_id: str, *, now: datetime) -> tuple[str, ...]:
    """The secrets that sign the tenant's per-job callbacks; empty when it never created one."""
    row = session.get(WebhookCallbackSecret, tenant_id)
    if row is None:
        return ()
    return signing_secrets(row.secret, row.previous_secret, row.previous_secret_expires_at, now=now)


def has_callback_secret(session: Session, tenant_id: str) -> bool:
    return session.get(WebhookCallbackSecret, tenant_id) is not None
