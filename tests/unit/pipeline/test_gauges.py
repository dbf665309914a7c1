"""The gauges beat samples (pipeline/gauges.py), against real PostgreSQL and Redis: every count is
read as a difference, since other tests leave rows and messages behind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session, sessionmaker

from pipeline import gauges
from pipeline.db import jobs
from pipeline.db.models import Job, utcnow
from pipeline.db.session import transaction
from pipeline.ids import new_id
from pipeline.settings import Settings
from schemas.common import InputKind
from schemas.envelope import JobEnvelope, JobInput
from tests.conftest import TenantKey, make_tenant
from tests.support.services import free_port

MESSAGES = (("analyze", b"gauge-test-1"), ("analyze", b"gauge-test-2"), ("analyze\x06\x163", b"p3"))


def new_job(sessions: sessionmaker[Session], tenant: TenantKey, **changes: object) -> str:
    """A job as the API creates it (its start message left unpublished in the outbox)."""
    job_id = new_id("job")
    blob = JobInput(
        kind=InputKind.TRANSCRIPT, blob_key="k", sha256="0" * 64, content_type="text/plain", bytes=1
    )
    envelope = JobEnvelope(job_id=job_id, tenant_id=tenant.tenant_id, input=blob)
    with transaction(sessions) as session:
        jobs.create_job(session, envelope, external_id=None, call_type=None, metadata={})
    with transaction(sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        for name, value in changes.items():
            setattr(job, name, value)
    return job_id


@pytest.fixture
def queued(settings: Settings) -> Iterator[None]:
    client = redis.Redis.from_url(settings.redis_url)
    for queue, body in MESSAGES:
        client.rpush(queue, body)
    yield
    for queue, body in MESSAGES:
        client.lrem(queue, 0, body)
    client.close()


def test_a_sample_counts_each_gauge(
    sessions: sessionmaker[Session], settings: Settings, tenant: TenantKey
) -> None:
    idle = make_tenant(sessions, "idle")
    before = gauges.sample(sessions, settings.redis_url, now=utcnow())
    new_job(sessions, tenant, released_at=None)  # a batch item waiting in the backlog
    new_job(sessions, tenant, next_action_at=utcnow() - timedelta(minutes=1))
    after = gauges.sample(sessions, settings.redis_url, now=utcnow())

    assert after.jobs_by_status["queued"] - before.jobs_by_status["queued"] == 2
    assert after.jobs_by_status["completed"] >= 0  # every status has a value, zero included
    assert after.backlog_by_tenant[tenant.tenant_id] == 1
    assert after.backlog_by_tenant[idle.tenant_id] == 0
    assert after.outbox_unpublished - before.outbox_unpublished == 2
    assert after.overdue_jobs - before.overdue_jobs == 1


def test_queue_depth_counts_every_priority(
    sessions: sessionmaker[Session], settings: Settings, queued: None
) -> None:
    depth = gauges.queue_depth(settings.redis_url, timeout_s=2)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        expected = client.llen("analyze") + client.llen("analyze\x06\x163")
    finally:
        client.close()
    assert set(depth) == set(gauges.QUEUES)
    assert depth["analyze"] == expected >= 3


def test_a_broker_that_is_down_leaves_only_the_queue_depth_out(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    found = gauges.sample(sessions, f"redis://127.0.0.1:{free_port()}/0", now=utcnow())
    assert found.queue_depth == {}
    assert sum(found.jobs_by_status.values()) >= 0 and found.jobs_by_status


def test_publish_sets_the_gauges(
    sessions: sessionmaker[Session], settings: Settings, tenant: TenantKey, queued: None
) -> None:
    new_job(sessions, tenant, released_at=None)
    found = gauges.sample(sessions, settings.redis_url, now=utcnow())
    gauges.publish(found)

    def value(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    assert value("callintel_backlog_items", tenant_id=tenant.tenant_id) == 1
    assert value("callintel_queue_depth", queue="analyze") == found.queue_depth["analyze"]
    assert value("callintel_jobs", status="queued") == found.jobs_by_status["queued"]
    assert value("callintel_outbox_unpublished") == found.outbox_unpublished
    assert value("callintel_jobs_overdue") == found.overdue_jobs
    assert (value("callintel_gauges_sampled_timestamp_seconds") or 0) > 0
