"""A consumer's earlier calls, read from the tenant's jobs: the history Reg F's call count needs."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db.models import Job
from pipeline.rules.contact_policy import CONSUMER_ID, ContactRecord, contact_from_metadata

# A past call's own zone is not needed (the window is counted in the checked call's zone), so a
# job that gives its start with an offset but no zone still counts.
HISTORY_TIMEZONE = "UTC"


def prior_contacts(
    session: Session,
    *,
    tenant_id: str,
    consumer_id: str,
    before: datetime,
    days: int,
    exclude_job_id: str | None,
) -> list[ContactRecord]:
    """Calls to `consumer_id` by this tenant only, started in [before - days, before], oldest first.

    `before` is aware. Jobs whose metadata cannot be read (see `contact_from_metadata`) are
    skipped. Ask for one day more than a calendar-day window: a DST change can stretch 7 local
    days beyond 7 x 24 hours. Reads only; the caller owns the transaction.
    """
    if before.tzinfo is None:
        raise ValueError("before must be timezone-aware")
    rows = session.execute(
        select(Job.id, Job.meta).where(
            Job.tenant_id == tenant_id,
            Job.meta[CONSUMER_ID].as_string() == consumer_id,
        )
    )
    since = before - timedelta(days=days)
    contacts = [
        record
        for job_id, meta in rows
        if job_id != exclude_job_id
        and (record := contact_from_metadata(job_id, meta, default_timezone=HISTORY_TIMEZONE))
        and since <= record.started_at <= before
    ]
    return sorted(contacts, key=lambda c: (c.started_at, c.job_id))
