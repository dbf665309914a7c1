"""The sending port: what one delivery attempt needs and what it learns (the HTTP adapter implements it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class WebhookRequest:
    msg_id: str  # the `webhook-id`: the delivery's id, the same on every attempt
    url: str
    body: str  # the exact JSON text that is signed and sent
    secrets: tuple[str, ...]  # `whsec_…`; two during a rotation overlap, each signs
    timestamp: datetime


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    latency_ms: int
    excerpt: str  # the start of the body, capped
    retry_after_s: float | None  # parsed `Retry-After`, when the receiver sent one


class WebhookSender(Protocol):
    def send(self, request: WebhookRequest) -> WebhookResponse:
        """POST the signed body once, following no redirect.

        Any HTTP answer is returned, whatever its status. Raises UnsafeWebhookUrl when the host
        resolves to a refused address (nothing is sent), InvalidWebhookUrl when it does not resolve,
        and DeliveryFailed (code `timeout`, `connect_error`, `tls_error`, …) when no answer came.
        """
        ...
