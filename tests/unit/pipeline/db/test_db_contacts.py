"""A consumer's earlier calls from job metadata, on PostgreSQL (JSONB): per tenant only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db import jobs
from pipeline.db.contacts import prior_contacts
from pipeline.db.session import transaction
from pipeline.db.tenants import create_tenant
from pipeline.ids import new_id
from pipeline.rules.contact_policy import REG_F_7_IN_7, ContactRecord, check_contact
from schemas.common import InputKind
from schemas.envelope import JobEnvelope, JobInput

NOW = datetime(2024, 6, 10, 18, 0, tzinfo=UTC)
NY = "America/New_York"


def new_tenant(db: sessionmaker[Session]) -> str:
    with transaction(db) as session:
        return create_tenant(session, name="collections").id


def add_job(db: sessionmaker[Session], tenant_id: str, metadata: dict[str, Any]) -> str:
    envelope = JobEnvelope(
        job_id=new_id("job"),
        tenant_id=tenant_id,
        input=JobInput(
            kind=InputKind.TRANSCRIPT,
            blob_key="k",
            sha256="0" * 64,
            content_type="application/json",
            bytes=1,
        ),
    )
    with transaction(db) as session:
        jobs.create_job(session, envelope, external_id=None, call_type=None, metadata=metadata)
    return envelope.job_id


def add_call(
    db: sessionmaker[Session], tenant_id: str, started_at: datetime, consumer: str = "c-1"
) -> str:
    meta = {"consumer_id": consumer, "call_started_at": started_at.isoformat(), "timezone": NY}
    return add_job(db, tenant_id, meta)


def history(
    db: sessionmaker[Session], tenant_id: str, *, days: int = 7, exclude: str | None = None
) -> list[ContactRecord]:
    with db() as session:
        return prior_contacts(
            session,
            tenant_id=tenant_id,
            consumer_id="c-1",
            before=NOW,
            days=days,
            exclude_job_id=exclude,
        )


def test_only_the_tenants_own_calls_count(db: sessionmaker[Session]) -> None:
    mine, theirs = new_tenant(db), new_tenant(db)
    own = [add_call(db, mine, NOW - timedelta(days=d)) for d in (3, 2, 1)]
    for d in (3, 2, 1, 0):
        add_call(db, theirs, NOW - timedelta(days=d, hours=1))  # same consumer id, other tenant

    found = history(db, mine)

    assert [c.job_id for c in found] == own  # oldest first
    assert {c.consumer_id for c in found} == {"c-1"}
    assert len(history(db, theirs)) == 4


def test_window_edges_and_exclusions(db: sessionmaker[Session]) -> None:
    tenant = new_tenant(db)
    first_instant = add_call(db, tenant, NOW - timedelta(days=7))
    add_call(db, tenant, NOW - timedelta(days=7, seconds=1))  # just outside
    at_before = add_call(db, tenant, NOW)
    add_call(db, tenant, NOW + timedelta(seconds=1))  # after the call being checked
    this_call = add_call(db, tenant, NOW - timedelta(hours=1))
    add_call(db, tenant, NOW - timedelta(hours=2), consumer="c-2")
    add_call(db, tenant, NOW - timedelta(hours=3), consumer="c-10")  # not a prefix match
    add_job(db, tenant, {"consumer_id": "c-1", "call_started_at": "not a time"})
    add_job(db, tenant, {"consumer_id": "c-1"})
    naive_local = add_job(
        db, tenant, {"consumer_id": "c-1", "call_started_at": "2024-06-09T09:00:00", "timezone": NY}
    )
    no_zone = add_job(
        db, tenant, {"consumer_id": "c-1", "call_started_at": "2024-06-08T09:00:00+02:00"}
    )

    found = history(db, tenant, exclude=this_call)

    assert [c.job_id for c in found] == [first_instant, no_zone, naive_local, at_before]
    by_id = {c.job_id: c for c in found}
    assert by_id[naive_local].started_at == datetime(2024, 6, 9, 13, 0, tzinfo=UTC)
    assert by_id[no_zone].started_at == datetime(2024, 6, 8, 7, 0, tzinfo=UTC)
    assert [c.job_id for c in history(db, tenant, days=1, exclude=this_call)] == [at_before]


def test_naive_before_is_refused(db: sessionmaker[Session]) -> None:
    with db() as session, pytest.raises(ValueError, match="aware"):
        prior_contacts(
            session,
            tenant_id="t",
            consumer_id="c-1",
            before=datetime(2024, 6, 10),
            days=7,
            exclude_job_id=None,
        )


def test_eighth_call_in_seven_days_is_flagged_from_the_database(db: sessionmaker[Session]) -> None:
    tenant, other = new_tenant(db), new_tenant(db)
    for d in range(6):
        add_call(db, tenant, NOW - timedelta(days=d, hours=2))
    for d in range(3):
        add_call(db, other, NOW - timedelta(days=d, hours=3))
    call = ContactRecord("now", "c-1", NOW, NY)  # 14:00 in New York

    assert check_contact(call, history(db, tenant, days=8)) == []  # the 7th call
    add_call(db, tenant, NOW - timedelta(days=6, hours=1))
    assert [f.code for f in check_contact(call, history(db, tenant, days=8))] == [REG_F_7_IN_7]
