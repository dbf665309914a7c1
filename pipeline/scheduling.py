"""Fair shares of capacity for the backlog scheduler: who gets the next free slots.

Pure functions: the scheduler (pipeline/db/backlog.py) reads the demand from the database and
releases what `share` decides. Fairness is weighted max-min on work in flight: each free slot goes
to the tenant with the least in flight per unit of weight, so a tenant with 20,000 items waiting
and one with 20 get the same share while both wait, and one alone gets everything up to its cap.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from schemas.tenant import ProcessingWindow


@dataclass(frozen=True)
class Demand:
    """One tenant's batch work: items waiting, items released and unfinished, and its limits."""

    tenant_id: str
    waiting: int
    in_flight: int
    cap: int
    weight: int = 1
    # Capacity pools its items draw on besides the global one: the cloud providers its jobs are
    # pinned to ("assemblyai", "gemini"), each with a deployment-wide cap.
    lanes: tuple[str, ...] = ()


def share(
    demands: Iterable[Demand], *, free: int, lane_free: Mapping[str, int] | None = None
) -> dict[str, int]:
    """How many items to release per tenant, at most `free` in all and at most `lane_free[x]`
    for tenants on lane `x` (weighted max-min fair)."""
    lanes = dict(lane_free or {})
    heap: list[tuple[float, str, int]] = []
    room: dict[str, int] = {}
    by_id: dict[str, Demand] = {}
    for d in demands:
        by_id[d.tenant_id] = d
        room[d.tenant_id] = min(d.waiting, d.cap - d.in_flight)
        if room[d.tenant_id] > 0:
            heapq.heappush(heap, (d.in_flight / max(d.weight, 1), d.tenant_id, d.in_flight))
    granted: dict[str, int] = {}
    while free > 0 and heap:
        _, tenant_id, load = heapq.heappop(heap)
        demand = by_id[tenant_id]
        if any(lane in lanes and lanes[lane] <= 0 for lane in demand.lanes):
            continue  # its provider is at capacity: the slot goes to someone else
        for lane in demand.lanes:
            if lane in lanes:
                lanes[lane] -= 1
        granted[tenant_id] = granted.get(tenant_id, 0) + 1
        free -= 1
        if granted[tenant_id] < room[tenant_id]:
            heapq.heappush(heap, ((load + 1) / max(demand.weight, 1), tenant_id, load + 1))
    return granted


def in_window(window: ProcessingWindow | None, now: datetime) -> bool:
    """True when batch items may be released at `now` (always, without a window)."""
    if window is None:
        return True
    local = now.astimezone(ZoneInfo(window.timezone)).time()
    if window.start <= window.end:
        return window.start <= local < window.end
    return local >= window.start or local < window.end  # spans midnight
