"""The backlog: batch items wait here, in the database, until the scheduler releases them.

Releasing an item marks it (`released_at`), moves it out of its batch's backlog counter and writes
the outbox row that publishes its chain, all in one transaction; the relay then publishes. So the
broker only ever holds what is released (queues stay short, a broker restart loses nothing that
was not released, and one-off jobs never wait behind a night's backlog).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from pipeline.db.batch_models import RELEASABLE, Batch
from pipeline.db.jobs import start_message
from pipeline.db.models import Job, JobStep, Tenant
from pipeline.db.tenant_config import parse_config
from pipeline.errors import PermanentError
from pipeline.scheduling import Demand, in_window, share
from pipeline.settings import DEFAULT_DEADLINES, Deadlines, Settings
from schemas.common import JobStatus, Stage
from schemas.tenant import TenantConfig

log = logging.getLogger(__name__)


def release_due(session: Session, settings: Settings, *, now: datetime) -> list[str]:
    """Release what the caps, weights and windows allow now; returns the released job ids."""
    demands = current_demand(session, settings, now=now)
    in_flight = sum(d.in_flight for d in demands)
    free = settings.batch_max_in_flight - in_flight
    released: list[str] = []
    lanes = lane_room(demands, settings, throttled=throttled_lanes(session))
    for tenant_id, n in share(demands, free=free, lane_free=lanes).items():
        released.extend(release(session, tenant_id, n, now=now, deadlines=settings.deadlines))
    return released


# A step backing off from a provider's 429 tells which provider pushed back.
_LANE_OF_STAGE = {Stage.TRANSCRIBE.value: "assemblyai", Stage.ANALYZE.value: "gemini"}
RATE_LIMITED = "provider_rate_limited"


def throttled_lanes(session: Session) -> set[str]:
    """Providers with work backing off from a 429 right now (indexed: few steps are retrying)."""
    stages = session.scalars(
        select(JobStep.stage)
        .where(JobStep.state == "retrying", JobStep.error_code == RATE_LIMITED)
        .distinct()
    )
    return {_LANE_OF_STAGE[s] for s in stages if s in _LANE_OF_STAGE}


def lane_room(
    demands: list[Demand], settings: Settings, *, throttled: Collection[str] = ()
) -> dict[str, int]:
    """Free capacity per cloud provider: its cap less the batch items in flight on it; none for a
    provider that is answering 429 (nothing new is sent it until its retries pass)."""
    caps = {
        "assemblyai": settings.assemblyai_max_in_flight,
        "gemini": settings.gemini_max_in_flight,
    }
    used: Counter[str] = Counter()
    for d in demands:
        for lane in d.lanes:
            used[lane] += d.in_flight
    return {lane: 0 if lane in throttled else cap - used[lane] for lane, cap in caps.items()}


def lanes_of(config: TenantConfig, settings: Settings) -> tuple[str, ...]:
    """The cloud providers a tenant's batch items are pinned to (as the submission service pins).

    Items analyzed through Gemini's Batch API (`batches.gemini_batch`) send Gemini one request
    each, not a stream at its rate limit: they do not draw on Gemini's pool.
    """
    transcriber = config.providers.transcriber or settings.transcriber
    analyzer = config.providers.analyzer or settings.analyzer
    economy = analyzer == "gemini" and config.batches.gemini_batch
    pinned = (transcriber,) if economy else (transcriber, analyzer)
    return tuple(p for p in pinned if p in ("assemblyai", "gemini"))


def current_demand(session: Session, settings: Settings, *, now: datetime) -> list[Demand]:
    """Every tenant with unfinished batch work, from the batches' counters (no scan of jobs).

    A tenant outside its processing window keeps its in-flight count (it still uses capacity)
    but asks for nothing. Items parked on a Gemini batch job hold no slot anywhere (the provider
    works on them for hours), so they do not count as in flight: a night on the Batch API is
    submitted at the pace of the workers, not of Gemini's batch turnaround.
    """
    running = Batch.total - Batch.backlog - Batch.completed - Batch.failed - Batch.cancelled
    rows = session.execute(
        select(Batch.tenant_id, func.sum(Batch.backlog), func.sum(running))
        .where(Batch.finished_at.is_(None))
        .group_by(Batch.tenant_id)
    ).all()
    configs = _configs(session, [str(r[0]) for r in rows])
    parked = parked_analyses(session)
    demands = []
    for tenant_id, waiting, in_flight in rows:
        config = configs.get(tenant_id, TenantConfig())
        policy = config.batches
        open_now = in_window(policy.window, now)
        demands.append(
            Demand(
                tenant_id=tenant_id,
                waiting=int(waiting or 0) if open_now else 0,
                in_flight=max(int(in_flight or 0) - parked.get(tenant_id, 0), 0),
                cap=policy.max_in_flight or settings.batch_tenant_max_in_flight,
                weight=policy.weight,
                lanes=lanes_of(config, settings),
            )
        )
    return demands


def parked_analyses(session: Session) -> dict[str, int]:
    """Per tenant, batch items whose analysis waits on a provider batch job (step `waiting`)."""
    rows = session.execute(
        select(Job.tenant_id, func.count())
        .join(JobStep, JobStep.job_id == Job.id)
        .where(
            JobStep.state == "waiting",
            JobStep.stage == Stage.ANALYZE.value,
            Job.batch_id.is_not(None),
        )
        .group_by(Job.tenant_id)
    ).all()
    return {str(tenant_id): int(n) for tenant_id, n in rows}


def release(
    session: Session,
    tenant_id: str,
    n: int,
    *,
    now: datetime,
    deadlines: Deadlines = DEFAULT_DEADLINES,
) -> list[str]:
    """Release the tenant's `n` oldest waiting items (rows another scheduler holds are skipped);
    from now on each has a deadline, like a one-off job."""
    picked = session.execute(
        select(Job.id, Job.batch_id)
        .join(Batch, Batch.id == Job.batch_id)
        .where(
            Job.tenant_id == tenant_id,
            Job.released_at.is_(None),
            Job.status == JobStatus.QUEUED.value,
            Batch.status.in_(RELEASABLE),
        )
        .order_by(Job.created_at, Job.id)
        .limit(n)
        .with_for_update(of=Job, skip_locked=True)
    ).all()
    ids = [str(job_id) for job_id, _ in picked]
    if not ids:
        return []
    session.execute(
        update(Job)
        .where(Job.id.in_(ids))
        .values(released_at=now, updated_at=now, next_action_at=deadlines.queued(now))
        .execution_options(synchronize_session=False)
    )
    for batch_id, k in Counter(str(b) for _, b in picked).items():
        session.execute(
            update(Batch)
            .where(Batch.id == batch_id)
            .values(backlog=Batch.backlog - k, started_at=func.coalesce(Batch.started_at, now))
        )
    session.add_all(start_message(job_id) for job_id in ids)
    return ids


def _configs(session: Session, tenant_ids: list[str]) -> dict[str, TenantConfig]:
    if not tenant_ids:
        return {}
    found: dict[str, TenantConfig] = {}
    for tenant_id, body in session.execute(
        select(Tenant.id, Tenant.config).where(Tenant.id.in_(tenant_ids))
    ):
        try:
            found[tenant_id] = parse_config(body)
        except PermanentError:  # a stored config that no longer validates: our defaults
            log.warning("tenant config invalid; default batch policy", extra={"tenant": tenant_id})
    return found
