"""The outbox relay: publish what committed transactions asked for, at least once.

A row is claimed (a lease, committed), published with no database connection held, then marked
published: a broker that is slow or frozen never pins a pooled connection, and a publish that
fails leaves its row for the beat sweep once the lease lapses. The API publishes the rows of a
submission right after its commit; a stage's hand-off is claimed in the very transaction that wrote
it, and its task publishes it. Stages are idempotent, so publishing a row twice is harmless, while
never publishing one would strand its job (docs/recovery.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db import jobs
from pipeline.db.batches import TOPIC_IMPORT
from pipeline.db.models import Job, OutboxMessage, utcnow
from pipeline.db.rescore_backlog import TOPIC_RESCORE
from pipeline.db.session import transaction
from schemas.common import Stage
from schemas.envelope import JobEnvelope
from workers.batch_import import send_import
from workers.rescore import send_rescore
from workers.workflow import send_stage, start_pipeline

log = logging.getLogger(__name__)

# Published rows are kept this long (to see what was sent), then the sweep deletes them.
KEEP_PUBLISHED = timedelta(hours=1)
# A row that failed for another reason than the broker is tried again only after this long.
SET_ASIDE = timedelta(hours=1)
# Failures of the broker connection itself (kombu wraps most; redis-py's and sockets' may leak).
BROKER_ERRORS = (KombuError, RedisError, OSError)


@dataclass(frozen=True)
class Claimed:
    id: int
    topic: str
    payload: dict[str, Any]
    envelope: dict[str, Any] | None  # the job's stored envelope, for a start
    batch: bool


def relay(
    sessions: sessionmaker[Session],
    *,
    job_ids: Sequence[str] | None = None,
    message_ids: Sequence[int] | None = None,
    older_than_s: float = 0.0,
    claim_s: float = 30.0,
    limit: int = 200,
) -> int:
    """Publish unpublished, unclaimed outbox rows: those of the given jobs or ids, or all older
    than `older_than_s`. Returns how many were published; stops at the first broker failure
    (the broker is down: the rest would fail alike) and leaves those rows to the sweep."""
    claimed = _claim(
        sessions,
        job_ids=job_ids,
        message_ids=message_ids,
        older_than_s=older_than_s,
        claim_s=claim_s,
        limit=limit,
    )
    published: list[int] = []
    unusable: list[int] = []
    try:
        for row in claimed:
            try:
                _dispatch(row)
            except BROKER_ERRORS:
                raise  # the broker is down: the rest would fail alike
            except Exception:
                # A row that can never be published (a payload this release cannot read) must not
                # block the rows behind it: it is logged and set aside; the reaper covers its job.
                log.exception("outbox row set aside", extra={"row": row.id, "topic": row.topic})
                unusable.append(row.id)
                continue
            published.append(row.id)
    finally:
        mark_published(sessions, published)
        _update(sessions, unusable, claimed_until=utcnow() + SET_ASIDE)
        # What could not be published goes back to the sweep at once, not after the lease.
        done = {*published, *unusable}
        _unclaim(sessions, [row.id for row in claimed if row.id not in done])
    return len(published)


def publish_after_commit(
    sessions: sessionmaker[Session],
    job_ids: Sequence[str] = (),
    *,
    message_ids: Sequence[int] = (),
) -> None:
    """Publish the rows of these jobs (all of them: a job may hold an older row whose publish
    failed), or these rows, right after the commit that wrote them; a broker that is down leaves
    them to the sweep. Never raises: the commit already made the work durable."""
    try:
        if job_ids:
            relay(sessions, job_ids=job_ids, limit=max(200, 4 * len(job_ids)))
        if message_ids:
            relay(sessions, message_ids=message_ids, limit=max(200, len(message_ids)))
    except Exception:
        log.warning("publish deferred to the outbox sweep", exc_info=True)


def publish_handoff(
    sessions: sessionmaker[Session], message_id: int, handoff: jobs.Handoff
) -> bool:
    """Publish a stage's hand-off that its own transaction claimed; False if the broker failed
    (the row stays claimed, and the sweep publishes it when the claim lapses)."""
    try:
        send_stage(handoff.envelope, handoff.stage, batch=handoff.batch)
    except Exception:
        log.warning(
            "hand-off left to the outbox sweep",
            extra={"job_id": handoff.envelope.job_id, "stage": handoff.stage.value},
            exc_info=True,
        )
        return False
    mark_published(sessions, [message_id])
    return True


def mark_published(sessions: sessionmaker[Session], ids: Sequence[int]) -> None:
    _update(sessions, ids, published_at=utcnow(), attempts=OutboxMessage.attempts + 1)


def _unclaim(sessions: sessionmaker[Session], ids: Sequence[int]) -> None:
    _update(sessions, ids, claimed_until=None)


def _update(sessions: sessionmaker[Session], ids: Sequence[int], **values: Any) -> None:
    if not ids:
        return
    with transaction(sessions) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def purge_published(sessions: sessionmaker[Session], *, limit: int = 5000) -> int:
    """Delete rows published more than KEEP_PUBLISHED ago (a bounded batch per call)."""
    cutoff = utcnow() - KEEP_PUBLISHED
    with transaction(sessions) as session:
        old = (
            select(OutboxMessage.id)
            .where(OutboxMessage.published_at < cutoff)
            .limit(limit)
            .scalar_subquery()
        )
        result = session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(old)))
        return int(getattr(result, "rowcount", 0) or 0)


def _claim(
    sessions: sessionmaker[Session],
    *,
    job_ids: Sequence[str] | None,
    message_ids: Sequence[int] | None,
    older_than_s: float,
    claim_s: float,
    limit: int,
) -> list[Claimed]:
    now = utcnow()
    free = or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= now)
    query = select(OutboxMessage, Job.envelope, Job.batch_id).outerjoin(
        Job, Job.id == OutboxMessage.job_id
    )
    query = query.where(OutboxMessage.published_at.is_(None), free)
    if job_ids is not None:
        query = query.where(OutboxMessage.job_id.in_(job_ids))
    elif message_ids is not None:
        query = query.where(OutboxMessage.id.in_(message_ids))
    else:
        query = query.where(OutboxMessage.created_at <= now - timedelta(seconds=older_than_s))
    with transaction(sessions) as session:
        rows = session.execute(
            query.order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(of=OutboxMessage, skip_locked=True)
        ).all()
        claimed = []
        for message, envelope, batch_id in rows:
            message.claimed_until = now + timedelta(seconds=claim_s)
            claimed.append(
                Claimed(message.id, message.topic, message.payload, envelope, batch_id is not None)
            )
        return claimed


def _dispatch(row: Claimed) -> None:
    if row.topic == jobs.TOPIC_START and row.envelope is not None:
        start_pipeline(JobEnvelope.model_validate(row.envelope), batch=row.batch)
    elif row.topic == jobs.TOPIC_STAGE:
        envelope = JobEnvelope.model_validate(row.payload["envelope"])
        send_stage(envelope, Stage(row.payload["stage"]), batch=bool(row.payload.get("batch")))
    elif row.topic == TOPIC_IMPORT:
        send_import(str(row.payload["batch_id"]))
    elif row.topic == TOPIC_RESCORE:
        send_rescore(str(row.payload["rescore_id"]), analyzer=row.payload.get("analyzer"))
    # Job events (job.completed, job.failed) do not pass through here: their webhook deliveries are
    # written in the job's final transaction (pipeline/webhooks/deliveries.py) and beat sends them.
