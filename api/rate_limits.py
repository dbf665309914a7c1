"""Per-tenant rate limits on the creating endpoints (docs/rate-limits.md).

`@rate_limited("submit")` charges the caller's bucket of that class before the view runs; over the
limit it is a 429 `rate_limited` problem with Retry-After. Every checked response carries the
RateLimit-Limit, -Remaining, -Reset and -Policy headers (IETF httpapi-ratelimit-headers, draft 07).
When Redis does not answer in time the request is accepted unchecked (fail open): intake must keep
working through a broker outage, and the limiter leaves Redis alone for a moment before retrying.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, ParamSpec

from flask import Flask, Response, current_app, g
from pydantic import ValidationError

from api.auth import Caller, require_caller
from api.problems import ApiProblem
from api.ratelimit import Decision, GcraLimiter, LimiterUnavailable, Rate
from pipeline.settings import Settings
from schemas.tenant import RateLimits

log = logging.getLogger(__name__)

LimitClass = Literal["submit", "upload", "rescore", "batch"]
KEY = "callintel.rate_limits"
ATTRIBUTE = "rate_limit_class"  # set on each limited view (the OpenAPI drift test reads it)
DOWN_BACKOFF_S = 1.0  # after Redis failed to answer, checks are skipped this long
_CHECKED = "rate_limit_checked"

P = ParamSpec("P")
Cost = Callable[[], int]


@dataclass
class Throttle:
    """What the app holds: the limiter, the deployment's rates, and when Redis last failed."""

    limiter: GcraLimiter
    settings: Settings
    down_until: float = 0.0  # time.monotonic(); a plain float, racing writers are harmless


def init_app(app: Flask, settings: Settings) -> None:
    url = settings.rate_limit_redis_url or settings.redis_url
    limiter = GcraLimiter.from_url(url, timeout_s=settings.rate_limit_timeout_s)
    app.extensions[KEY] = Throttle(limiter, settings)
    app.after_request(_add_headers)


def rate_limited(
    name: LimitClass, *, cost: Cost | None = None
) -> Callable[[Callable[P, Response]], Callable[P, Response]]:
    """Charge the caller's `name` bucket `cost()` units (default 1) before the view runs.

    Put it outside `@idempotent`, so a refused request claims no key; a replay is charged too.
    Raises the 401 of an unauthenticated request first, so strangers charge nobody's bucket.
    """

    def decorate(view: Callable[P, Response]) -> Callable[P, Response]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
            charge(name, cost() if cost is not None else 1)
            return view(*args, **kwargs)

        setattr(wrapper, ATTRIBUTE, name)
        return wrapper

    return decorate


def charge(name: LimitClass, cost: int) -> None:
    """Charge the calling tenant's bucket, or raise the 429 problem; fails open (see the module)."""
    caller, throttle = require_caller(), _throttle()
    rate = rate_for(throttle.settings, caller, name)
    if rate is None or time.monotonic() < throttle.down_until:
        return
    try:
        decision = throttle.limiter.check(f"{caller.tenant_id}:{name}", rate, cost=cost)
    except LimiterUnavailable as exc:
        throttle.down_until = time.monotonic() + DOWN_BACKOFF_S
        log.warning("rate limiter unavailable (%s): requests accepted unchecked", exc)
        return
    setattr(g, _CHECKED, (rate, decision))
    if not decision.allowed:
        raise _refusal(name, rate, decision, cost=cost)


def rate_for(settings: Settings, caller: Caller, name: LimitClass) -> Rate | None:
    """The tenant's override of class `name`, else the deployment's; None when it is disabled."""
    override = getattr(_overrides(caller), name)
    if override is not None:
        per_s, burst = override.per_s, override.burst
    else:
        per_s, burst = deployment_rates(settings)[name]
    return Rate(per_s, burst) if per_s > 0 else None


def deployment_rates(settings: Settings) -> dict[LimitClass, tuple[float, int]]:
    """(per second, burst) of each class from the RATE_LIMIT_* settings."""
    s = settings
    return {
        "submit": (s.rate_limit_submit_per_s, s.rate_limit_submit_burst),
        "upload": (s.rate_limit_upload_per_s, s.rate_limit_upload_burst),
        "rescore": (s.rate_limit_rescore_per_s, s.rate_limit_rescore_burst),
        "batch": (s.rate_limit_batch_per_s, s.rate_limit_batch_burst),
    }


def _overrides(caller: Caller) -> RateLimits:
    try:
        return RateLimits.model_validate(caller.config.get("rate_limits") or {})
    except ValidationError:
        # PUT validates configurations, so this is an old one: the deployment's limits apply.
        log.warning("tenant %s: stored rate_limits are not valid; defaults apply", caller.tenant_id)
        return RateLimits()


def _refusal(name: LimitClass, rate: Rate, decision: Decision, *, cost: int) -> ApiProblem:
    retry = max(1, math.ceil(decision.retry_after_s))
    detail = f"the {name} rate limit is {rate.per_s:g} per second with bursts of {rate.burst}"
    if cost > 1:
        detail += f"; this request costs {min(cost, rate.burst)}"
    detail += f"; retry after {retry} s"
    return ApiProblem(429, "rate_limited", detail, headers={"Retry-After": str(retry)})


def _add_headers(response: Response) -> Response:
    checked: tuple[Rate, Decision] | None = g.pop(_CHECKED, None)
    if checked is not None:
        rate, decision = checked
        response.headers["RateLimit-Limit"] = str(decision.limit)
        response.headers["RateLimit-Remaining"] = str(decision.remaining)
        response.headers["RateLimit-Reset"] = str(math.ceil(decision.reset_s))
        response.headers["RateLimit-Policy"] = f"{rate.burst};w={rate.window_s}"
    return response


def _throttle() -> Throttle:
    value: Throttle = current_app.extensions[KEY]
    return value
