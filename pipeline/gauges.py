"""The gauges beat samples every GAUGES_INTERVAL_S: jobs by status, backlog per tenant, unpublished
outbox rows, overdue jobs and broker queue depth (docs/operations.md).

Read-only and cheap: a few aggregate queries and one LLEN per queue. Every tenant and status gets
a value, zero included, so a series that drained reads 0 instead of its last non-zero sample.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime

import redis
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline import metrics
from pipeline.db.models import Job, OutboxMessage, Tenant
from schemas.common import UNFINISHED, JobStatus

log = logging.getLogger(__name__)

QUEUES = ("transcribe", "asr-local", "analyze", "default", "webhooks", "maintenance")
# Kombu's Redis transport keeps a queue's priorities 3, 6 and 9 in lists of their own.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


@dataclass(frozen=True)
class Sample:
    jobs_by_status: dict[str, int]
    backlog_by_tenant: dict[str, int]
    outbox_unpublished: int
    overdue_jobs: int
    queue_depth: dict[str, int] = field(default_factory=dict)  # empty when the broker is down


def sample(
    sessions: sessionmaker[Session], redis_url: str, *, now: datetime, timeout_s: float = 2.0
) -> Sample:
    """Read every gauge's value; a broker that does not answer leaves `queue_depth` empty."""
    with sessions() as session:
        by_status = dict.fromkeys((s.value for s in JobStatus), 0)
        by_status |= _counts(session, select(Job.status, func.count()).group_by(Job.status))
        waiting = and_(
            Job.tenant_id == Tenant.id, Job.released_at.is_(None), Job.status.in_(UNFINISHED)
        )
        backlog = select(Tenant.id, func.count(Job.id)).outerjoin(Job, waiting).group_by(Tenant.id)
        unpublished = select(func.count()).where(OutboxMessage.published_at.is_(None))
        overdue = select(func.count()).where(Job.next_action_at < now, Job.status.in_(UNFINISHED))
        read = Sample(
            jobs_by_status=by_status,
            backlog_by_tenant=_counts(session, backlog),
            outbox_unpublished=session.scalar(unpublished) or 0,
            overdue_jobs=session.scalar(overdue.select_from(Job)) or 0,
        )
    # The broker is asked with no database connection held (it may be slow or frozen).
    return replace(read, queue_depth=queue_depth(redis_url, timeout_s=timeout_s))


def _counts(session: Session, query: object) -> dict[str, int]:
    return {str(key): int(n) for key, n in session.execute(query)}  # type: ignore[call-overload]


def queue_depth(redis_url: str, *, timeout_s: float) -> dict[str, int]:
    """Messages waiting per queue (all priorities); {} when the broker does not answer."""
    client = redis.Redis.from_url(
        redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in QUEUES:
                for suffix in _PRIORITY_SUFFIXES:
                    pipe.llen(queue + suffix)
            lengths = pipe.execute()
    except redis.RedisError as exc:
        log.warning("queue depth not sampled: broker unavailable (%s)", type(exc).__name__)
        return {}
    finally:
        client.close()
    per = len(_PRIORITY_SUFFIXES)
    return {q: sum(lengths[i * per : (i + 1) * per]) for i, q in enumerate(QUEUES)}


def publish(found: Sample) -> None:
    """Set the gauges from `found` (and the time they were sampled)."""
    for status, n in found.jobs_by_status.items():
        metrics.JOBS_BY_STATUS.labels(status).set(n)
    for tenant_id, n in found.backlog_by_tenant.items():
        metrics.BACKLOG.labels(tenant_id).set(n)
    metrics.OUTBOX_UNPUBLISHED.set(found.outbox_unpublished)
    metrics.OVERDUE_JOBS.set(found.overdue_jobs)
    for queue, n in found.queue_depth.items():
        metrics.QUEUE_DEPTH.labels(queue).set(n)
    metrics.GAUGES_SAMPLED.set(time.time())
