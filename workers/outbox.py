"""The outbox relay: publish what committed transactions asked for, at least once.

The API calls `relay` right after its commit; the beat sweep calls it for rows left behind (the API
crashed between commit and publish, or the broker was down). Stages are idempotent, so publishing a
row twice is harmless, while never publishing one would strand its job.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db import jobs
from pipeline.db.batches import TOPIC_IMPORT
from pipeline.db.models import Job, OutboxMessage, utcnow
from pipeline.db.rescores import TOPIC_RESCORE
from pipeline.db.session import transaction
from workers.batch_import import send_import
from workers.rescore import send_rescore
from workers.workflow import start_job

log = logging.getLogger(__name__)


def relay(
    sessions: sessionmaker[Session],
    *,
    job_ids: Sequence[str] | None = None,
    message_ids: Sequence[int] | None = None,
    older_than_s: float = 0.0,
    limit: int = 200,
) -> int:
    """Publish unpublished outbox rows: those of the given jobs or ids, or all older than
    `older_than_s`."""
    with transaction(sessions) as session:
        query = select(OutboxMessage).where(OutboxMessage.published_at.is_(None))
        if job_ids is not None:
            query = query.where(OutboxMessage.job_id.in_(job_ids))
        elif message_ids is not None:
            query = query.where(OutboxMessage.id.in_(message_ids))
        else:
            cutoff = utcnow() - timedelta(seconds=older_than_s)
            query = query.where(OutboxMessage.created_at <= cutoff)
        rows = session.scalars(
            query.order_by(OutboxMessage.id).limit(limit).with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            _dispatch(session, row)
            row.published_at = utcnow()
            row.attempts += 1
        return len(rows)


def _dispatch(session: Session, row: OutboxMessage) -> None:
    if row.topic == jobs.TOPIC_START and row.job_id is not None:
        job = session.get(Job, row.job_id)
        if job is not None:
            start_job(job)
    elif row.topic == TOPIC_IMPORT:
        send_import(str(row.payload["batch_id"]))
    elif row.topic == TOPIC_RESCORE:
        send_rescore(str(row.payload["rescore_id"]), analyzer=row.payload.get("analyzer"))
    # Job events (job.completed, job.failed) do not pass through here: their webhook deliveries are
    # written in the job's final transaction (pipeline/webhooks/deliveries.py) and beat sends them.
