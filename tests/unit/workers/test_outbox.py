"""The outbox relay (docs/recovery.md): claim, publish with no database connection held, mark; a
row another publisher holds is left alone until its claim lapses; old published rows are purged."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db import jobs
from pipeline.db.models import OutboxMessage, utcnow
from pipeline.db.session import transaction
from pipeline.settings import Settings
from tests.conftest import TenantKey
from tests.unit.workers.test_reaper import new_job, queued_messages
from workers import outbox


def rows_of(sessions: sessionmaker[Session], job_id: str) -> list[OutboxMessage]:
    with sessions() as session:
        query = select(OutboxMessage).where(OutboxMessage.job_id == job_id)
        return list(session.scalars(query.order_by(OutboxMessage.id)))


def add_start(sessions: sessionmaker[Session], job_id: str, **fields: object) -> int:
    with transaction(sessions) as session:
        row = jobs.start_message(job_id)
        for name, value in fields.items():
            setattr(row, name, value)
        session.add(row)
        session.flush()
        return row.id


def test_a_claimed_row_waits_for_its_claim_to_lapse(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = new_job(sessions, tenant, settings)  # its start row is published and marked
    assert all(row.published_at is not None for row in rows_of(sessions, job_id))
    before = queued_messages(settings, job_id)
    held = add_start(sessions, job_id, claimed_until=utcnow() + timedelta(minutes=5))

    assert outbox.relay(sessions, job_ids=[job_id]) == 0  # its writer is publishing it
    assert queued_messages(settings, job_id) == before
    with transaction(sessions) as session:  # …and died: the claim lapses
        row = session.get(OutboxMessage, held)
        assert row is not None
        row.claimed_until = utcnow() - timedelta(seconds=1)
    assert outbox.relay(sessions, job_ids=[job_id]) == 1
    assert queued_messages(settings, job_id) == before + 1
    row = rows_of(sessions, job_id)[-1]
    assert (row.id, row.attempts) == (held, 1)
    assert row.published_at is not None


def test_the_sweep_takes_only_rows_older_than_one_sweep(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = new_job(sessions, tenant, settings)
    fresh = add_start(sessions, job_id)
    assert fresh not in _swept(sessions, older_than_s=60)
    old = add_start(sessions, job_id, created_at=utcnow() - timedelta(minutes=2))
    assert old in _swept(sessions, older_than_s=60)


def _swept(sessions: sessionmaker[Session], *, older_than_s: float) -> set[int]:
    outbox.relay(sessions, older_than_s=older_than_s, limit=10_000)
    with sessions() as session:
        query = select(OutboxMessage.id).where(OutboxMessage.published_at.is_not(None))
        return set(session.scalars(query))


def test_published_rows_are_purged_after_a_while(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = new_job(sessions, tenant, settings)
    recent = add_start(sessions, job_id, published_at=utcnow())
    old = add_start(sessions, job_id, published_at=utcnow() - outbox.KEEP_PUBLISHED * 2)
    unpublished = add_start(sessions, job_id, created_at=utcnow() - timedelta(days=2))
    outbox.purge_published(sessions)
    left = {row.id for row in rows_of(sessions, job_id)}
    assert recent in left and unpublished in left
    assert old not in left


def test_a_row_that_cannot_be_published_does_not_block_the_rows_behind_it(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = new_job(sessions, tenant, settings)
    before = queued_messages(settings, job_id)
    with transaction(sessions) as session:  # a payload this release cannot read, first in line
        bad = OutboxMessage(topic=jobs.TOPIC_STAGE, job_id=job_id, payload={"stage": "nonsense"})
        session.add(bad)
        session.flush()
        bad_id = bad.id
    good = add_start(sessions, job_id)

    assert outbox.relay(sessions, job_ids=[job_id]) == 1
    assert queued_messages(settings, job_id) == before + 1
    rows = {row.id: row for row in rows_of(sessions, job_id)}
    assert rows[good].published_at is not None
    set_aside = rows[bad_id]
    assert set_aside.published_at is None
    assert set_aside.claimed_until is not None and set_aside.claimed_until > utcnow()
