"""Secrets for provider completion callbacks: a per-job token the provider sends back to us.

The token is an HMAC of the job id, so a callback can only make its own job re-check early; it
never carries data we trust (we still ask the provider for the transcript ourselves).
"""

from __future__ import annotations

import hashlib
import hmac

from pipeline.settings import Settings

HEADER = "X-Callintel-Token"
WEBHOOK_PATH = "/v1/providers/assemblyai/webhook"


def _secret(settings: Settings) -> bytes | None:
    if settings.provider_webhook_secret is not None:
        return settings.provider_webhook_secret.get_secret_value().encode()
    if settings.assemblyai_api_key is not None:
        # Derived, so a deployment works without one more secret; rotating the key rotates it.
        key = settings.assemblyai_api_key.get_secret_value().encode()
        return hmac.new(key, b"callintel provider webhook", hashlib.sha256).digest()
    return None


def token_for(job_id: str, settings: Settings) -> str | None:
    secret = _secret(settings)
    if secret is None:
        return None
    return hmac.new(secret, job_id.encode(), hashlib.sha256).hexdigest()


def verify(job_id: str, token: str, settings: Settings) -> bool:
    expected = token_for(job_id, settings)
    return expected is not None and hmac.compare_digest(expected, token)


def callback_url(job_id: str, settings: Settings) -> str | None:
    """Where AssemblyAI should report completion, or None when we are not reachable from outside."""
    if not settings.public_base_url:
        return None
    return f"{settings.public_base_url.rstrip('/')}{WEBHOOK_PATH}?job={job_id}"


def next_check_delay(elapsed_s: float, *, schedule: list[float], long_wait_s: float) -> float:
    """Seconds until the next status check of a provider job submitted `elapsed_s` ago.

    Checks follow `schedule` (short at first: most calls take seconds to a few minutes), then every
    `long_wait_s`. With a completion webhook the provider usually makes the check due sooner.
    """
    waited = 0.0
    for delay in schedule:
        waited += delay
        if waited > elapsed_s:
            return max(0.5, waited - elapsed_s)
    return long_wait_s
