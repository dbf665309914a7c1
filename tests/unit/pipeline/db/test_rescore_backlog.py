"""The rescore backlog releases waiting rescores fairly, within the per-tenant and global caps, with
their outbox rows in the same transaction; a rescore whose message was lost is released again.

Its own fresh database: the global cap counts every tenant's rescores, and the session's shared
database holds rescores other tests left behind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db import rescore_backlog, rescores
from pipeline.db.migrate import upgrade
from pipeline.db.models import Job, OutboxMessage, utcnow
from pipeline.db.rescore_models import Rescore
from pipeline.db.session import make_engine, make_session_factory, transaction
from pipeline.db.tenants import create_tenant
from pipeline.settings import Settings
from schemas.common import JobStatus
from tests.support.jobs import queued_job
from tests.support.services import postgres_database

CAPS = Settings(rescore_tenant_max_in_flight=4, rescore_max_in_flight=5, rescore_redrive_s=600)


@pytest.fixture(scope="module")
def db() -> Iterator[sessionmaker[Session]]:
    with postgres_database() as url:
        upgrade(url)
        engine = make_engine(url)
        yield make_session_factory(engine)
        engine.dispose()


@pytest.fixture(autouse=True)
def empty(db: sessionmaker[Session]) -> None:
    with transaction(db) as session:
        session.execute(update(Rescore).values(status="completed"))


def tenant_with(db: sessionmaker[Session], n: int, *, reanalyze: bool = False) -> str:
    """A tenant with `n` completed jobs, each with a waiting rescore; returns its id."""
    with transaction(db) as session:
        tenant_id = create_tenant(session, name="t").id
        for _ in range(n):
            job = queued_job(session, tenant_id=tenant_id)
            job.status = JobStatus.COMPLETED.value
            rescores.create_rescore(session, job, reanalyze=reanalyze)
    return tenant_id


def release_due(db: sessionmaker[Session], settings: Settings = CAPS) -> Counter[str]:
    """One scheduler tick: how many rescores each tenant got."""
    with transaction(db) as session:
        job_ids = rescore_backlog.release_due(session, settings, now=utcnow())
        owners = session.execute(select(Job.id, Job.tenant_id).where(Job.id.in_(job_ids))).all()
    return Counter(str(tenant_id) for _, tenant_id in owners)


def statuses(db: sessionmaker[Session], tenant_id: str) -> Counter[str]:
    with db() as session:
        rows = session.scalars(select(Rescore.status).where(Rescore.tenant_id == tenant_id))
        return Counter(rows)


def finish_all(db: sessionmaker[Session], tenant_id: str) -> None:
    with transaction(db) as session:
        session.execute(
            update(Rescore)
            .where(Rescore.tenant_id == tenant_id, Rescore.status == "queued")
            .values(status="completed")
        )


def test_a_created_rescore_waits_and_nothing_is_published(db: sessionmaker[Session]) -> None:
    tenant_id = tenant_with(db, 3)
    assert statuses(db, tenant_id) == {"waiting": 3}
    with db() as session:
        topics = session.scalars(
            select(OutboxMessage.topic)
            .join(Job, Job.id == OutboxMessage.job_id)
            .where(Job.tenant_id == tenant_id)
        ).all()
    assert rescore_backlog.TOPIC_RESCORE not in topics


def test_a_flood_and_a_single_rescore_share_the_global_cap_fairly(
    db: sessionmaker[Session],
) -> None:
    flood, single = tenant_with(db, 40), tenant_with(db, 1)
    assert release_due(db) == {flood: 4, single: 1}  # the flood stops at its own cap
    assert statuses(db, flood) == {"queued": 4, "waiting": 36}
    assert release_due(db) == {}  # nothing finished: no room
    finish_all(db, flood)
    assert release_due(db) == {flood: 4}
    two, three = tenant_with(db, 10), tenant_with(db, 10)
    finish_all(db, flood)
    finish_all(db, single)
    granted = release_due(db)
    assert sum(granted.values()) == CAPS.rescore_max_in_flight
    assert max(granted.values()) - min(granted.values()) <= 1
    assert set(granted) == {flood, two, three}


def test_each_release_writes_its_outbox_row_naming_where_it_reanalyzes(
    db: sessionmaker[Session],
) -> None:
    tenant_id = tenant_with(db, 2, reanalyze=True)
    assert release_due(db) == {tenant_id: 2}
    with db() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .join(Rescore, Rescore.job_id == OutboxMessage.job_id)
            .where(Rescore.tenant_id == tenant_id, OutboxMessage.topic == "rescore.start")
        ).all()
        ids = set(session.scalars(select(Rescore.id).where(Rescore.tenant_id == tenant_id)))
    assert {r.payload["rescore_id"] for r in rows} == ids
    assert {r.payload["analyzer"] for r in rows} == {"local"}  # the jobs pinned no analyzer


def test_the_api_path_releases_at_once_only_up_to_the_tenants_cap(
    db: sessionmaker[Session],
) -> None:
    tenant_id = tenant_with(db, 6)
    with transaction(db) as session:
        released = rescore_backlog.release_tenant(session, CAPS, tenant_id, now=utcnow())
    assert len(released) == 4
    assert statuses(db, tenant_id) == {"queued": 4, "waiting": 2}
    with transaction(db) as session:
        assert rescore_backlog.release_tenant(session, CAPS, tenant_id, now=utcnow()) == []


def test_a_released_rescore_whose_message_was_lost_is_released_again(
    db: sessionmaker[Session],
) -> None:
    tenant_id = tenant_with(db, 5)
    assert release_due(db) == {tenant_id: 4}
    assert release_due(db) == {}
    long_ago = utcnow() - timedelta(seconds=CAPS.rescore_redrive_s + 1)
    with transaction(db) as session:
        session.execute(
            update(Rescore)
            .where(Rescore.tenant_id == tenant_id, Rescore.status == "queued")
            .values(released_at=long_ago)
        )
    assert release_due(db) == {tenant_id: 4}  # the oldest first: the four lost ones
    with db() as session:
        fresh = session.scalars(
            select(Rescore.released_at).where(Rescore.tenant_id == tenant_id)
        ).all()
    assert sorted(t is not None and t > long_ago for t in fresh) == [False, True, True, True, True]
