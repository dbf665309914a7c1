"""When the next delivery attempt is due: the retry schedule with jitter, and the receiver's Retry-After."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_rng = random.Random()  # noqa: S311 - jitter, not cryptography


def first_delay(schedule: Sequence[float]) -> float:
    """Delay before the first attempt ("immediately" in the default schedule)."""
    return float(schedule[0]) if schedule else 0.0


def next_delay(
    schedule: Sequence[float],
    failed_attempts: int,
    *,
    jitter: float,
    retry_after_s: float | None = None,
    max_retry_after_s: float,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the attempt after `failed_attempts` failed ones, or None when the budget is spent.

    `schedule[i]` is the delay before attempt i+1, so its length is the number of attempts. Each delay
    moves by up to ±`jitter` of itself, so endpoints that failed together are not retried together.
    A receiver's Retry-After (capped) is honoured when it asks for more than the schedule gives.
    """
    if failed_attempts >= len(schedule):
        return None
    base = float(schedule[failed_attempts])
    delay = base * (1 + (rng or _rng).uniform(-jitter, jitter))
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max_retry_after_s))
    return max(delay, 0.0)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
