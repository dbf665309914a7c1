"""Retry waits, one policy for every task: exponential backoff with full jitter."""

from __future__ import annotations

import random

MAX_BACKOFF_S = 120
# While the database is unreachable a task retries without end (an outage is not the job's fault),
# but often enough that work resumes within half a minute of the database coming back.
OUTAGE_BACKOFF_S = 30


def backoff(retries: int, *, cap_s: float = MAX_BACKOFF_S) -> float:
    """2, 4, 8 … s with full jitter, capped well under the visibility timeout."""
    cap: float = min(cap_s, 2 ** (retries + 1))
    return random.uniform(0.5, 1.0) * cap  # noqa: S311 - jitter, not cryptography
