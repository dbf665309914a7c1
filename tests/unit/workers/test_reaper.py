"""The reaper (docs/recovery.md): every unfinished job whose next action is overdue is re-driven,
whatever state its steps are in; one that keeps making no progress fails `stuck`."""

from __future__ import annotations

import base64
import itertools
import json
from datetime import timedelta

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db import jobs
from pipeline.db.models import Job, OutboxMessage, utcnow
from pipeline.db.session import transaction
from pipeline.ids import new_id
from pipeline.settings import Settings
from schemas.common import InputKind, Stage
from schemas.envelope import JobEnvelope, JobInput
from tests.conftest import TenantKey
from workers import outbox
from workers.maintenance import reap


def new_job(sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings) -> str:
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
        jobs.create_job(
            session,
            envelope,
            external_id=None,
            call_type=None,
            metadata={},
            deadlines=settings.deadlines,
        )
    outbox.relay(sessions, job_ids=[job_id])  # published after the commit, as the API does
    return job_id


def overdue(sessions: sessionmaker[Session], job_id: str, **changes: object) -> None:
    """Make the job's next action overdue, in whatever state `changes` put it."""
    with transaction(sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        for name, value in changes.items():
            setattr(job, name, value)
        job.next_action_at = utcnow() - timedelta(seconds=1)


def get(sessions: sessionmaker[Session], job_id: str) -> Job:
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def queued_messages(settings: Settings, job_id: str) -> int:
    """Messages for this job waiting in the transcribe queue, where a transcript job's first stage
    goes (workers/workflow.py); other tests' jobs may be re-driven into the same queue."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        raw = client.lrange("transcribe", 0, -1)
    finally:
        client.close()
    bodies = (base64.b64decode(json.loads(message)["body"]) for message in raw)
    return sum(job_id.encode() in body for body in bodies)


def start_rows(sessions: sessionmaker[Session], job_id: str) -> list[OutboxMessage]:
    with sessions() as session:
        return list(
            session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.job_id == job_id, OutboxMessage.topic == jobs.TOPIC_START
                )
            )
        )


def test_an_overdue_job_is_redriven_with_a_growing_wait_then_failed(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = new_job(sessions, tenant, settings)
    with transaction(sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        jobs.begin_stage(session, job, Stage.TRANSCRIBE, max_attempts=3)
    before = queued_messages(settings, job_id)

    waits = []
    for attempt in range(1, settings.max_redrives + 1):
        overdue(sessions, job_id)  # …its worker died: no heartbeat
        assert reap(sessions, settings) >= 1
        job = get(sessions, job_id)
        assert (job.status, job.redrives) == ("transcribing", attempt)
        assert (
            queued_messages(settings, job_id) == before + attempt
        )  # its first stage was sent again
        assert job.next_action_at is not None
        waits.append((job.next_action_at - utcnow()).total_seconds())
    # Each re-drive waits twice as long as the last before the next: a long queue is not flooded.
    assert all(b > 1.9 * a for a, b in itertools.pairwise(waits))
    assert all(row.published_at is not None for row in start_rows(sessions, job_id))

    overdue(sessions, job_id)
    reap(sessions, settings)
    job = get(sessions, job_id)
    assert (job.status, job.error_code, job.error_stage) == ("failed", "stuck", "transcribe")
    assert job.next_action_at is None
    assert queued_messages(settings, job_id) == before + settings.max_redrives


@pytest.mark.parametrize(
    ("status", "step_state"),
    [
        ("queued", "pending"),  # its start message was lost
        ("transcribing", "succeeded"),  # the stage finished, its hand-off was lost
        ("transcribing", "retrying"),  # its retry message was lost
        ("transcribing", "waiting"),  # a provider check was lost
    ],
)
def test_whatever_the_steps_say_an_overdue_job_is_redriven(
    sessions: sessionmaker[Session],
    tenant: TenantKey,
    settings: Settings,
    status: str,
    step_state: str,
) -> None:
    job_id = new_job(sessions, tenant, settings)
    with transaction(sessions) as session:
        jobs.get_step(session, job_id, Stage.TRANSCRIBE).state = step_state
    overdue(sessions, job_id, status=status, stage=None if status == "queued" else "transcribe")
    reap(sessions, settings)
    assert get(sessions, job_id).redrives == 1


def test_progress_resets_the_redrive_count(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = new_job(sessions, tenant, settings)
    overdue(sessions, job_id)
    reap(sessions, settings)
    assert get(sessions, job_id).redrives == 1
    with transaction(sessions) as session:
        jobs.finish_stage(session, job_id, Stage.TRANSCRIBE, provider="p", model=None)
    assert get(sessions, job_id).redrives == 0


def test_a_redrive_skipping_finished_stages_is_not_progress(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = new_job(sessions, tenant, settings)
    with transaction(sessions) as session:  # transcribe done; its hand-off to diarize was lost
        jobs.finish_stage(session, job_id, Stage.TRANSCRIBE, provider="p", model=None)
    overdue(sessions, job_id)
    reap(sessions, settings)
    redriven = get(sessions, job_id)
    with transaction(sessions) as session:  # the re-sent transcribe is skipped by its artifact
        jobs.finish_stage(session, job_id, Stage.TRANSCRIBE, provider=None, model=None)
    skipped = get(sessions, job_id)
    assert (skipped.redrives, skipped.next_action_at) == (1, redriven.next_action_at)


def test_a_job_on_time_is_left_alone(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = new_job(sessions, tenant, settings)  # queued, its start due within the deadline
    reap(sessions, settings)
    assert get(sessions, job_id).redrives == 0


def test_a_batch_item_in_the_backlog_has_no_deadline(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = new_job(sessions, tenant, settings)
    with transaction(sessions) as session:  # a night's item, not yet released by the scheduler
        row = session.get(Job, job_id)
        assert row is not None
        row.released_at, row.batch_id, row.next_action_at = None, new_id("bat"), None
        row.updated_at = utcnow() - timedelta(hours=12)
    reap(sessions, settings)
    assert get(sessions, job_id).redrives == 0


def test_finished_jobs_carry_no_deadline(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    job_id = new_job(sessions, tenant, settings)
    with transaction(sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        jobs.fail_job(session, job, Stage.TRANSCRIBE, code="x", message="y", settings=settings)
    assert get(sessions, job_id).next_action_at is None
    reap(sessions, settings)
    assert get(sessions, job_id).status == "failed"
