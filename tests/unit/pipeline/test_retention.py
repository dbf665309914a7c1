"""Job deletion and retention purges on PostgreSQL, with a real (local directory) blob store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pipeline import retention
from pipeline.adapters.local_fs import LocalBlobStore
from pipeline.db.audit_models import AuditEvent
from pipeline.db.models import Job, JobResult, JobStep, utcnow
from pipeline.db.session import transaction
from pipeline.db.tenants import create_tenant
from pipeline.db.webhook_models import PENDING, SUCCEEDED, WebhookDelivery
from pipeline.ids import new_id
from pipeline.settings import Settings
from tests.support.finished_jobs import finish, stored_job


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def new_tenant(db: sessionmaker[Session], **config: object) -> str:
    with transaction(db) as session:
        return create_tenant(session, name="t", config=dict(config)).id


def keys(blobs: LocalBlobStore, tenant_id: str) -> list[str]:
    root = blobs.root / "tenants" / tenant_id
    return sorted(str(p.relative_to(blobs.root)) for p in root.rglob("*") if p.is_file())


def events(db: sessionmaker[Session], tenant_id: str) -> list[tuple[str, str, str, dict[str, int]]]:
    with db() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant_id).order_by(AuditEvent.id)
        )
        return [(e.job_id, e.actor, e.action, dict(e.removed)) for e in rows]


def delivery(db: sessionmaker[Session], tenant_id: str, job_id: str, state: str) -> str:
    with transaction(db) as session:
        row = WebhookDelivery(
            id=new_id("msg"),
            tenant_id=tenant_id,
            url="https://example.com/hook",
            event_type="job.completed",
            event_id=new_id("evt"),
            job_id=job_id,
            payload={},
            state=state,
        )
        session.add(row)
    return row.id


def delete(db: sessionmaker[Session], blobs: LocalBlobStore, job_id: str) -> retention.Removed:
    with transaction(db) as session:
        job = session.get(Job, job_id, with_for_update=True)
        assert job is not None
        return retention.delete_job(session, blobs, job, actor="key_1")


# --- delete_job --------------------------------------------------------------------------------


def test_delete_job_removes_its_blobs_rows_and_unsent_deliveries(
    sessions: sessionmaker[Session], blobs: LocalBlobStore
) -> None:
    tenant = new_tenant(sessions)
    job_id, kept = stored_job(sessions, blobs, tenant), stored_job(sessions, blobs, tenant)
    finish(sessions, job_id)
    pending = delivery(sessions, tenant, job_id, PENDING)
    sent = delivery(sessions, tenant, job_id, SUCCEEDED)

    removed = delete(sessions, blobs, job_id)

    assert removed == retention.Removed(
        blobs=3, results=1, steps=5, rescores=0, webhook_deliveries=1, jobs=1
    )
    assert all(kept in k for k in keys(blobs, tenant)) and len(keys(blobs, tenant)) == 3
    with sessions() as session:
        assert session.get(Job, job_id) is None
        assert session.get(JobResult, job_id) is None
        assert session.scalars(select(JobStep).where(JobStep.job_id == job_id)).all() == []
        assert session.get(WebhookDelivery, pending) is None
        assert session.get(WebhookDelivery, sent) is not None  # what was sent stays on record
        assert session.get(Job, kept) is not None
    assert events(sessions, tenant) == [(job_id, "key_1", "job.deleted", removed.counts())]


def test_an_unfinished_job_is_not_deleted(
    sessions: sessionmaker[Session], blobs: LocalBlobStore
) -> None:
    tenant = new_tenant(sessions)
    job_id = stored_job(sessions, blobs, tenant)

    with pytest.raises(retention.JobInProgress) as info:
        delete(sessions, blobs, job_id)

    assert info.value.code == "job_in_progress"
    assert len(keys(blobs, tenant)) == 3
    with sessions() as session:
        assert session.get(Job, job_id) is not None
    assert events(sessions, tenant) == []


def test_an_input_outside_the_job_folder_goes_unless_another_job_reads_it(
    sessions: sessionmaker[Session], blobs: LocalBlobStore
) -> None:
    tenant = new_tenant(sessions)
    upload = f"tenants/{tenant}/uploads/upl_1"
    first = stored_job(sessions, blobs, tenant, input_key=upload)
    second = stored_job(sessions, blobs, tenant, input_key=upload)
    finish(sessions, first)
    finish(sessions, second)

    assert delete(sessions, blobs, first).blobs == 2  # its artifacts; the upload is shared
    assert upload in keys(blobs, tenant)
    assert delete(sessions, blobs, second).blobs == 3  # the last reader takes the upload along
    assert keys(blobs, tenant) == []


# --- purge_expired -----------------------------------------------------------------------------


def settings(**values: object) -> Settings:
    return Settings.model_validate(values)


def purge(db: sessionmaker[Session], blobs: LocalBlobStore, **values: object) -> None:
    retention.purge_expired(db, blobs, settings(**values), now=utcnow())


def job_row(db: sessionmaker[Session], job_id: str) -> Job | None:
    with db() as session:
        return session.get(Job, job_id)


def input_purged(db: sessionmaker[Session], job_id: str) -> bool:
    row = job_row(db, job_id)
    assert row is not None
    return row.input_purged_at is not None


def test_expired_audio_is_purged_and_the_result_kept(
    sessions: sessionmaker[Session], blobs: LocalBlobStore
) -> None:
    tenant, other = new_tenant(sessions, retention_days=30), new_tenant(sessions)
    old, recent = stored_job(sessions, blobs, tenant), stored_job(sessions, blobs, tenant)
    stored_job(sessions, blobs, tenant)  # still queued: never a candidate
    finish(sessions, old, days_ago=31)
    finish(sessions, recent, days_ago=29)
    untouched = stored_job(sessions, blobs, other)
    finish(sessions, untouched, days_ago=400)

    purge(sessions, blobs)
    purge(sessions, blobs)  # a second run finds nothing more

    assert not any(old in k for k in keys(blobs, tenant))
    assert len(keys(blobs, tenant)) == 6 and len(keys(blobs, other)) == 3
    assert input_purged(sessions, old)
    assert not input_purged(sessions, recent)
    with sessions() as session:
        assert session.get(JobResult, old) is not None
    removed = {"blobs": 3, "results": 0, "steps": 0, "rescores": 0, "webhook_deliveries": 0}
    assert events(sessions, tenant) == [
        (old, "retention", "job.input_purged", {**removed, "jobs": 0})
    ]


def test_an_expired_result_purges_the_whole_job(
    sessions: sessionmaker[Session], blobs: LocalBlobStore
) -> None:
    tenant = new_tenant(sessions, retention_days=7, result_retention_days=90)
    gone, audio_only = stored_job(sessions, blobs, tenant), stored_job(sessions, blobs, tenant)
    finish(sessions, gone, days_ago=91)
    finish(sessions, audio_only, days_ago=8)

    purge(sessions, blobs)

    assert job_row(sessions, gone) is None
    assert job_row(sessions, audio_only) is not None
    assert keys(blobs, tenant) == []
    actions = [
        (job_id, action, removed["jobs"]) for job_id, _, action, removed in events(sessions, tenant)
    ]
    assert sorted(actions) == sorted([(gone, "job.purged", 1), (audio_only, "job.input_purged", 0)])


def test_the_deployment_default_applies_when_the_tenant_sets_none(
    sessions: sessionmaker[Session], blobs: LocalBlobStore
) -> None:
    default, own = new_tenant(sessions), new_tenant(sessions, retention_days=100)
    a, b = stored_job(sessions, blobs, default), stored_job(sessions, blobs, own)
    finish(sessions, a, days_ago=20)
    finish(sessions, b, days_ago=20)

    purge(sessions, blobs, retention_audio_days=10)

    assert input_purged(sessions, a)
    assert not input_purged(sessions, b)


def test_purges_run_in_bounded_batches(
    sessions: sessionmaker[Session], blobs: LocalBlobStore
) -> None:
    tenant = new_tenant(sessions, retention_days=1)
    ids = [stored_job(sessions, blobs, tenant) for _ in range(5)]
    for job_id in ids:
        finish(sessions, job_id, days_ago=2)

    def purged() -> int:
        return sum(input_purged(sessions, j) for j in ids)

    report = retention.purge_expired(
        sessions, blobs, settings(retention_batch_size=2, retention_max_batches=2), now=utcnow()
    )
    assert (report.batches, report.inputs, purged()) == (2, 4, 4)
    purge(sessions, blobs, retention_batch_size=2, retention_max_batches=2)
    assert purged() == 5


def test_a_job_locked_elsewhere_is_skipped_and_purged_by_a_later_run(
    sessions: sessionmaker[Session], blobs: LocalBlobStore
) -> None:
    tenant = new_tenant(sessions, retention_days=1)
    busy, free = stored_job(sessions, blobs, tenant), stored_job(sessions, blobs, tenant)
    finish(sessions, busy, days_ago=2)
    finish(sessions, free, days_ago=2)

    with transaction(sessions) as holder:
        assert holder.get(Job, busy, with_for_update=True) is not None
        purge(sessions, blobs)  # does not wait for the lock
        assert input_purged(sessions, free)
    assert not input_purged(sessions, busy)

    purge(sessions, blobs)
    assert input_purged(sessions, busy)


def test_a_cutoff_is_days_after_the_job_finished(
    sessions: sessionmaker[Session], blobs: LocalBlobStore
) -> None:
    tenant = new_tenant(sessions, retention_days=3)
    job_id = stored_job(sessions, blobs, tenant)
    finish(sessions, job_id, days_ago=2)
    s = settings()

    retention.purge_expired(sessions, blobs, s, now=utcnow() + timedelta(hours=23))
    assert not input_purged(sessions, job_id)
    retention.purge_expired(sessions, blobs, s, now=utcnow() + timedelta(days=1, hours=1))
    assert input_purged(sessions, job_id)
