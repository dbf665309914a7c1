"""The retry schedule: Svix's delays by default, jitter within bounds, Retry-After honoured and capped."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from pipeline.settings import Settings
from pipeline.webhooks.schedule import first_delay, next_delay, parse_retry_after

SVIX = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]


def test_the_default_schedule_is_svixs() -> None:
    assert Settings().webhook_retry_schedule_s == SVIX
    assert first_delay(SVIX) == 0  # the first attempt is immediate


def test_without_jitter_each_failure_waits_the_scheduled_delay() -> None:
    delays = [next_delay(SVIX, n, jitter=0, max_retry_after_s=36000) for n in range(1, 9)]
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 36000, None]  # 8 attempts, then give up


@pytest.mark.parametrize("failed", range(1, 8))
def test_jitter_stays_within_its_share_and_varies(failed: int) -> None:
    rng = random.Random(7)
    seen = {next_delay(SVIX, failed, jitter=0.2, max_retry_after_s=1e9, rng=rng) for _ in range(50)}
    base = SVIX[failed]
    assert all(d is not None and 0.8 * base <= d <= 1.2 * base for d in seen)
    assert len(seen) > 40  # spread out, not one value


def test_retry_after_wins_when_it_asks_for_more_and_is_capped() -> None:
    assert next_delay(SVIX, 1, jitter=0, retry_after_s=120, max_retry_after_s=3600) == 120
    assert next_delay(SVIX, 2, jitter=0, retry_after_s=10, max_retry_after_s=3600) == 300
    assert next_delay(SVIX, 1, jitter=0, retry_after_s=10**9, max_retry_after_s=3600) == 3600
    assert next_delay(SVIX, 8, jitter=0, retry_after_s=1, max_retry_after_s=3600) is None


def test_retry_after_formats() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after(" 7 ") == 7
    assert (
        parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90
    )
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now=now) == 0
    for junk in (None, "", "soon", "-5", "1.5e3", "٣"):
        assert parse_retry_after(junk, now=now) is None
