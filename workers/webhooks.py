"""Webhook tasks: beat's `webhooks.dispatch_due` claims due deliveries; `webhooks.deliver` sends one.

Waits between attempts live in the database (`next_attempt_at`), never in Celery countdowns: a
message on Redis is redelivered after the visibility timeout, so a long countdown would run twice.
"""

from __future__ import annotations

import os

from pipeline.adapters.webhook_http import HttpWebhookSender
from pipeline.webhooks import dispatch
from pipeline.webhooks.deliveries import Claim
from workers.app import app
from workers.context import worker_context

_sender: tuple[int, HttpWebhookSender] | None = None


def sender() -> HttpWebhookSender:
    """This process's sender (built after fork, from the worker's settings)."""
    global _sender  # noqa: PLW0603 - a per-process cache, keyed by pid
    if _sender is None or _sender[0] != os.getpid():
        _sender = (os.getpid(), HttpWebhookSender.from_settings(worker_context().settings))
    return _sender[1]


def publish(claim: Claim) -> None:
    deliver.apply_async(args=(claim.delivery_id, claim.attempt), queue="webhooks")


@app.task(name="webhooks.dispatch_due", ignore_result=True)
def dispatch_due() -> int:
    ctx = worker_context()
    return dispatch.dispatch_due(ctx.sessions, ctx.settings, publish)


@app.task(
    name="webhooks.deliver", ignore_result=True, acks_late=True, soft_time_limit=90, time_limit=110
)
def deliver(delivery_id: str, attempt: int) -> str | None:
    """One attempt; a duplicate message sends nothing (the attempt number is compare-and-set)."""
    ctx = worker_context()
    return dispatch.deliver(ctx.sessions, sender(), Claim(delivery_id, attempt), ctx.settings)
