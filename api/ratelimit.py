"""A GCRA (generic cell rate algorithm) rate limiter in Redis: one atomic Lua script per check.

It knows buckets, rates and costs, nothing of tenants or HTTP (api/rate_limits.py applies it).
Each bucket is one Redis key holding its theoretical arrival time (TAT) in microseconds of
Redis's own clock, so API processes with skewed clocks still share one limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# KEYS[1]: the bucket. ARGV: emission interval (µs per unit), burst (units), cost (units).
# Returns {allowed, remaining, µs until the bucket is full, µs until this cost would conform}.
_GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local capacity = interval * burst
local new_tat = tat + interval * cost
local allow_at = new_tat - capacity
if now < allow_at then
  local left = math.floor((capacity - (tat - now)) / interval + 1e-6)
  return {0, left, math.ceil(tat - now), math.ceil(allow_at - now)}
end
local ttl_ms = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
local left = math.floor((capacity - (new_tat - now)) / interval + 1e-6)
return {1, left, math.ceil(new_tat - now), 0}
"""


@dataclass(frozen=True)
class Rate:
    """`per_s` units a second sustained, up to `burst` at once (a full bucket)."""

    per_s: float
    burst: int

    @property
    def window_s(self) -> int:
        """Seconds in which a full burst refills (whole seconds, as RateLimit-Policy wants)."""
        return max(1, math.ceil(self.burst / self.per_s))


@dataclass(frozen=True)
class Decision:
    """One check's outcome; times are seconds from now."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float  # until the bucket is full again
    retry_after_s: float  # until the refused cost would be accepted; 0 when allowed


class LimiterUnavailable(Exception):
    """Redis did not answer (down, slow, refused): the caller decides whether to fail open."""


class GcraLimiter:
    """Checks and charges buckets in Redis; thread-safe (redis-py pools its connections)."""

    def __init__(self, client: redis.Redis, *, prefix: str = "ratelimit:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_GCRA)

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float) -> GcraLimiter:
        """A limiter whose every check is bounded by `timeout_s` (connect and read, no retry)."""
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client)

    def check(self, bucket: str, rate: Rate, *, cost: int = 1) -> Decision:
        """Charge `cost` units to `bucket` if they conform to `rate`; a refusal charges nothing.

        A cost above the burst is charged as the burst, so a large request can still pass when
        the bucket is full. Raises LimiterUnavailable when Redis does not answer in time.
        """
        interval_us = 1_000_000 / rate.per_s
        units = max(1, min(cost, rate.burst))
        try:
            raw = self._script(keys=[self._prefix + bucket], args=[interval_us, rate.burst, units])
        except redis.RedisError as exc:
            raise LimiterUnavailable(type(exc).__name__) from exc
        allowed, remaining, full_us, wait_us = (int(v) for v in raw)
        return Decision(
            allowed=allowed == 1,
            limit=rate.burst,
            remaining=max(0, remaining),
            reset_s=full_us / 1_000_000,
            retry_after_s=wait_us / 1_000_000,
        )

    def close(self) -> None:
        self._client.close()
