"""Webhook errors, in the pipeline's tree (codes are stable; the API maps them to problem+json).

PipelineError
├── TransientError
│   └── DeliveryFailed      an attempt got no usable answer (connect/read timeout, TLS, reset)
└── PermanentError
    ├── InvalidWebhookUrl   not a URL we can send to at all (invalid_webhook_url)
    └── UnsafeWebhookUrl    resolves to an address we refuse to reach (unsafe_webhook_url)
"""

from __future__ import annotations

from pipeline.errors import PermanentError, TransientError


class InvalidWebhookUrl(PermanentError):
    code = "invalid_webhook_url"


class UnsafeWebhookUrl(PermanentError):
    code = "unsafe_webhook_url"


class DeliveryFailed(TransientError):
    """The attempt did not produce an HTTP answer; `code` says why (timeout, connect_error, …)."""

    code = "delivery_failed"
