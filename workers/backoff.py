"""Retry waits, one policy for every task: exponential backoff with full jitter."""

from __future__ import annotations

import random

MAX_BACKOFF_S = 120
# While the database is unreachable a stage goes back to its queue without end (an outage is not
# the job's fault) after a short wait, so work resumes within seconds of the database's return.
OUTAGE_WAIT_S = (1.0, 5.0)


def backoff(retries: int, *, cap_s: float = MAX_BACKOFF_S) -> float:
    """2, 4, 8 … s with full jitter, capped well under the visibility timeout."""
    cap: float = min(cap_s, 2 ** (retries + 1))
    return random.uniform(0.5, 1.0) * cap  # noqa: S311 - jitter, not cryptography


def outage_wait() -> float:
    """Seconds to wait before a stage that met a database outage goes back to its queue."""
    return random.uniform(*OUTAGE_WAIT_S)  # noqa: S311 - jitter, not cryptography
