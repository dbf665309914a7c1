"""The delivery log a tenant reads: deliveries by job or endpoint, each with its attempts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db.webhook_models import WebhookAttempt, WebhookDelivery


def find_deliveries(
    session: Session,
    tenant_id: str,
    *,
    job_id: str | None = None,
    endpoint_id: str | None = None,
    limit: int = 50,
) -> list[WebhookDelivery]:
    """Newest first; always scoped to the tenant."""
    query = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id)
    if job_id is not None:
        query = query.where(WebhookDelivery.job_id == job_id)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    return list(session.scalars(query.limit(limit)))


def get_delivery(session: Session, tenant_id: str, delivery_id: str) -> WebhookDelivery | None:
    row = session.get(WebhookDelivery, delivery_id)
    if row is None or row.tenant_id != tenant_id:
        return None
    return row


def attempts_of(session: Session, ids: Sequence[str]) -> dict[str, list[WebhookAttempt]]:
    """Attempts of many deliveries in one query, each list in attempt order."""
    grouped: dict[str, list[WebhookAttempt]] = defaultdict(list)
    if ids:
        query = select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids))
        for attempt in session.scalars(query.order_by(WebhookAttempt.number)):
            grouped[attempt.delivery_id].append(attempt)
    return {i: grouped[i] for i in ids}
