"""Driving deliveries: the dispatcher claims due rows and publishes them; `deliver` makes one attempt.

No Celery here: the worker passes a `publish` callable (send a task) and tests pass one that
delivers in-process. No transaction is held open across the HTTP call.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.session import transaction
from pipeline.errors import PipelineError
from pipeline.metrics import WEBHOOK_DELIVERIES
from pipeline.settings import Settings
from pipeline.webhooks import deliveries
from pipeline.webhooks.deliveries import Claim
from pipeline.webhooks.ports import WebhookResponse, WebhookSender

log = logging.getLogger(__name__)
Publish = Callable[[Claim], None]


def dispatch_due(
    sessions: sessionmaker[Session], settings: Settings, publish: Publish, *, limit: int = 200
) -> int:
    """Claim due deliveries and publish each once the claim committed; returns how many.

    A publish that fails leaves its row leased: it is due again when the lease ends.
    """
    with transaction(sessions) as session:
        claims = deliveries.claim_due(session, limit=limit, lease_s=settings.webhook_lease_s)
    for claim in claims:
        try:
            publish(claim)
        except Exception:
            log.warning("webhook publish deferred to the next lease", exc_info=True)
    return len(claims)


def deliver(
    sessions: sessionmaker[Session],
    sender: WebhookSender,
    claim: Claim,
    settings: Settings,
    *,
    rng: random.Random | None = None,
) -> str | None:
    """Make the claimed attempt; returns the delivery's state after it, None if nothing was sent."""
    with transaction(sessions) as session:
        request = deliveries.begin_attempt(session, claim, lease_s=settings.webhook_lease_s)
    if request is None:
        return None
    outcome: WebhookResponse | PipelineError
    try:
        outcome = sender.send(request)
    except PipelineError as exc:  # our tree only: the sender translated vendor errors
        outcome = exc
    with transaction(sessions) as session:
        state = deliveries.record_outcome(
            session, claim, request, outcome, settings=settings, rng=rng
        )
    WEBHOOK_DELIVERIES.labels(state).inc()
    extra = {"delivery_id": claim.delivery_id, "attempt": claim.attempt, "state": state}
    log.info("webhook attempt", extra=extra)
    return state
