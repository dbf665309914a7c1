"""The GCRA limiter on the test session's Redis: bursts, refusals that charge nothing, costs, expiry."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis

from api.ratelimit import GcraLimiter, LimiterUnavailable, Rate
from pipeline.ids import new_id
from tests.support.services import free_port


@pytest.fixture
def limiter(redis_url: str) -> Iterator[GcraLimiter]:
    value = GcraLimiter.from_url(redis_url, timeout_s=1.0)
    yield value
    value.close()


@pytest.fixture
def bucket() -> str:
    return new_id("test")  # a fresh bucket per test: nothing charged before


def test_a_full_bucket_allows_its_burst_then_refuses(limiter: GcraLimiter, bucket: str) -> None:
    rate = Rate(per_s=0.1, burst=3)  # a unit every 10 s
    decisions = [limiter.check(bucket, rate) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert all(d.limit == 3 for d in decisions)
    refused = decisions[-1]
    assert 9 < refused.retry_after_s <= 10  # the next unit drips in within one interval
    assert 29 < refused.reset_s <= 30  # three units to refill
    assert decisions[0].retry_after_s == 0


def test_a_refusal_charges_nothing(limiter: GcraLimiter, bucket: str) -> None:
    rate = Rate(per_s=0.1, burst=4)
    assert limiter.check(bucket, rate, cost=3).remaining == 1
    refused = limiter.check(bucket, rate, cost=2)
    assert not refused.allowed and refused.remaining == 1
    assert limiter.check(bucket, rate, cost=1).allowed  # the unit left was not taken


def test_a_cost_above_the_burst_is_charged_as_the_burst(limiter: GcraLimiter, bucket: str) -> None:
    rate = Rate(per_s=0.1, burst=5)
    first = limiter.check(bucket, rate, cost=50)
    assert first.allowed and first.remaining == 0
    assert not limiter.check(bucket, rate, cost=1).allowed


def test_buckets_are_separate_and_expire(limiter: GcraLimiter, bucket: str, redis_url: str) -> None:
    rate = Rate(per_s=2, burst=1)
    assert limiter.check(bucket, rate).allowed
    assert not limiter.check(bucket, rate).allowed
    assert limiter.check(bucket + "-other", rate).allowed
    client = redis.Redis.from_url(redis_url)
    try:
        ttl_ms = client.pttl(f"ratelimit:{bucket}")
    finally:
        client.close()
    assert 0 < ttl_ms <= 500  # gone once full again: idle tenants cost no memory


def test_the_policy_window_is_the_refill_time_in_whole_seconds() -> None:
    assert Rate(per_s=50, burst=200).window_s == 4
    assert Rate(per_s=3, burst=10).window_s == 4
    assert Rate(per_s=100, burst=1).window_s == 1


def test_a_refused_connection_is_unavailable(bucket: str) -> None:
    limiter = GcraLimiter.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    with pytest.raises(LimiterUnavailable):
        limiter.check(bucket, Rate(per_s=1, burst=1))
    limiter.close()


def test_a_redis_that_never_answers_is_unavailable_after_the_timeout(bucket: str) -> None:
    # The kernel completes the handshake from the backlog; nobody ever reads or answers.
    with socket.create_server(("127.0.0.1", 0), backlog=8) as silent:
        port = silent.getsockname()[1]
        limiter = GcraLimiter.from_url(f"redis://127.0.0.1:{port}/0", timeout_s=0.2)
        with pytest.raises(LimiterUnavailable):
            limiter.check(bucket, Rate(per_s=1, burst=1))
        limiter.close()
