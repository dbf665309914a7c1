"""The stuck-job reaper (RELIABILITY promise 2): re-drive a job whose worker died, then give up."""

from __future__ import annotations

from datetime import timedelta

import redis
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db import jobs
from pipeline.db.models import Job, utcnow
from pipeline.db.session import transaction
from pipeline.ids import new_id
from pipeline.settings import Settings
from schemas.common import InputKind, Stage
from schemas.envelope import JobEnvelope, JobInput
from tests.conftest import TenantKey
from workers.maintenance import MAX_REDRIVES, reap


def running_job(sessions: sessionmaker[Session], tenant: TenantKey, *, idle_s: float) -> str:
    job_id = new_id("job")
    envelope = JobEnvelope(
        job_id=job_id,
        tenant_id=tenant.tenant_id,
        input=JobInput(
            kind=InputKind.TRANSCRIPT,
            blob_key="k",
            sha256="0" * 64,
            content_type="application/json",
            bytes=1,
        ),
    )
    with transaction(sessions) as session:
        job = jobs.create_job(session, envelope, external_id=None, call_type=None, metadata={})
        jobs.begin_stage(session, job, Stage.TRANSCRIBE, max_attempts=3)
        job.updated_at = utcnow() - timedelta(seconds=idle_s)
    return job_id


def get(sessions: sessionmaker[Session], job_id: str) -> Job:
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def queued_messages(settings: Settings) -> int:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        # Where a transcribe task goes depends on the job's input and provider (workers/workflow.py).
        return int(client.llen("asr-local")) + int(client.llen("transcribe"))
    finally:
        client.close()


def test_a_stuck_job_is_redriven_then_failed(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = running_job(sessions, tenant, idle_s=3600)
    before = queued_messages(settings)

    for attempt in range(1, MAX_REDRIVES + 1):
        assert reap(sessions, settings) >= 1
        job = get(sessions, job_id)
        assert (job.status, job.redrives) == ("transcribing", attempt)
        assert queued_messages(settings) == before + attempt  # the chain was sent again
        with transaction(sessions) as session:  # …and the worker died again
            row = session.get(Job, job_id)
            assert row is not None
            row.updated_at = utcnow() - timedelta(seconds=3600)

    reap(sessions, settings)
    job = get(sessions, job_id)
    assert (job.status, job.error_code, job.error_stage) == ("failed", "stuck", "transcribe")
    assert queued_messages(settings) == before + MAX_REDRIVES


def test_a_job_waiting_for_its_next_stage_in_a_long_queue_is_left_alone(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = running_job(sessions, tenant, idle_s=3600)
    with transaction(sessions) as session:  # transcribe finished an hour ago; diarize is queued
        jobs.finish_stage(session, job_id, Stage.TRANSCRIBE, provider="p", model=None)
        row = session.get(Job, job_id)
        assert row is not None
        row.updated_at = utcnow() - timedelta(seconds=3600)
    reap(sessions, settings)
    job = get(sessions, job_id)
    assert (job.status, job.redrives) == ("transcribing", 0)


def test_a_retrying_step_whose_retry_was_lost_is_redriven(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = running_job(sessions, tenant, idle_s=3600)
    with transaction(sessions) as session:
        jobs.get_step(session, job_id, Stage.TRANSCRIBE).state = "retrying"
    reap(sessions, settings)
    assert get(sessions, job_id).redrives == 1


def test_a_long_silent_queued_job_is_redriven(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = running_job(sessions, tenant, idle_s=0)
    with transaction(sessions) as session:  # never started: its start message was lost
        row = session.get(Job, job_id)
        assert row is not None
        row.status, row.stage = "queued", None
        jobs.get_step(session, job_id, Stage.TRANSCRIBE).state = "pending"
        row.updated_at = utcnow() - timedelta(hours=2)
    reap(sessions, settings)  # SILENT_JOB_AFTER_S: 6 h by default
    assert get(sessions, job_id).redrives == 0  # a long queue is not a lost message …
    reap(sessions, settings.model_copy(update={"silent_job_after_s": 3600}))
    assert get(sessions, job_id).redrives == 1  # … but past the silence limit it is re-sent


def test_a_job_that_is_progressing_is_left_alone(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = running_job(sessions, tenant, idle_s=5)
    reap(sessions, settings)
    job = get(sessions, job_id)
    assert (job.status, job.redrives) == ("transcribing", 0)


def test_a_batch_item_waiting_in_the_backlog_is_never_redriven(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = running_job(sessions, tenant, idle_s=0)
    with transaction(sessions) as session:  # a night's item, not yet released by the scheduler
        row = session.get(Job, job_id)
        assert row is not None
        row.status, row.stage, row.released_at = "queued", None, None
        row.batch_id = new_id("bat")
        row.updated_at = utcnow() - timedelta(hours=12)
    reap(sessions, settings.model_copy(update={"silent_job_after_s": 3600}))
    assert get(sessions, job_id).redrives == 0
