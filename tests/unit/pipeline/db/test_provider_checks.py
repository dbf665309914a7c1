"""Provider re-checks live in the database: submission kept, step parked, due checks claimed once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db import jobs, provider_checks
from pipeline.db.models import Job, JobStep, OutboxMessage, utcnow
from pipeline.db.session import transaction
from pipeline.provider_webhooks import next_check_delay
from pipeline.settings import Settings
from schemas.common import InputKind, JobStatus, Stage
from tests.support.jobs import queued_job

T = Stage.TRANSCRIBE


def audio_job(db: sessionmaker[Session]) -> str:
    with transaction(db) as session:
        job = queued_job(session, kind=InputKind.AUDIO)
        jobs.begin_stage(session, job, T, max_attempts=3)
        return job.id


def get_step(db: sessionmaker[Session], job_id: str) -> JobStep:
    with db() as session:
        row = session.get(JobStep, (job_id, T.value))
        assert row is not None
        return row


def test_a_submission_is_remembered_so_a_rerun_checks_instead_of_resubmitting(
    db: sessionmaker[Session],
) -> None:
    job_id = audio_job(db)
    with transaction(db) as session:
        assert provider_checks.submission(session, job_id, T) is None
        provider_checks.record_submission(session, job_id, T, ref="tr_123")
    with db() as session:
        found = provider_checks.submission(session, job_id, T)
    assert found is not None and found.ref == "tr_123"
    assert (utcnow() - found.submitted_at) < timedelta(minutes=1)


def test_parking_a_step_does_not_count_as_a_lost_delivery(db: sessionmaker[Session]) -> None:
    job_id = audio_job(db)
    with transaction(db) as session:
        provider_checks.schedule_check(session, job_id, T, after_s=30)
    row = get_step(db, job_id)
    assert row.state == "waiting" and row.attempts == 0
    assert row.next_check_at is not None and row.next_check_at > utcnow() + timedelta(seconds=25)
    # Ten more checks that each find the provider busy never approach the attempts cap.
    for _ in range(10):
        with transaction(db) as session:
            job = jobs.lock_job(session, job_id)
            assert job is not None
            start = jobs.begin_stage(session, job, T, max_attempts=3)
            assert not start.over_cap
            provider_checks.schedule_check(session, job_id, T, after_s=30)


def test_only_due_checks_are_claimed_and_a_claim_is_leased(db: sessionmaker[Session]) -> None:
    due, later, finished = audio_job(db), audio_job(db), audio_job(db)
    with transaction(db) as session:
        provider_checks.schedule_check(session, due, T, after_s=-1)
        provider_checks.schedule_check(session, later, T, after_s=600)
        provider_checks.schedule_check(session, finished, T, after_s=-1)
        job = session.get(Job, finished)
        assert job is not None
        job.status = JobStatus.FAILED.value
    with transaction(db) as session:
        claimed = [job.id for job in provider_checks.claim_due(session, lease_s=300)]
    assert claimed == [due]
    with transaction(db) as session:  # leased: not claimed again until the lease ends
        assert provider_checks.claim_due(session, lease_s=300) == []
    with transaction(db) as session:
        jobs.finish_stage(session, due, T, provider="assemblyai", model=None)
    assert get_step(db, due).next_check_at is None


def test_a_provider_callback_makes_only_its_own_waiting_job_due(db: sessionmaker[Session]) -> None:
    job_id, other = audio_job(db), audio_job(db)
    with transaction(db) as session:
        provider_checks.record_submission(session, job_id, T, ref="tr_a")
        provider_checks.record_submission(session, other, T, ref="tr_b")
        provider_checks.schedule_check(session, job_id, T, after_s=600)
    with transaction(db) as session:
        assert not provider_checks.check_now(session, job_id=job_id, ref="tr_b")  # not its ref
        assert provider_checks.check_now(session, job_id=job_id, ref="tr_a")
    with db() as session:
        topics = session.scalars(
            select(OutboxMessage.topic).where(
                OutboxMessage.job_id == job_id, OutboxMessage.published_at.is_(None)
            )
        ).all()
    assert topics.count(jobs.TOPIC_START) == 2  # creation + the callback's re-check


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(0, 3), (2, 1), (3.5, 4.5), (8, 10), (1000, 300)],
)
def test_checks_follow_the_schedule_then_the_long_wait(elapsed: float, expected: float) -> None:
    schedule = Settings().assemblyai_poll_schedule_s
    assert schedule[:3] == [3, 5, 10]
    assert next_check_delay(elapsed, schedule=schedule, long_wait_s=300) == pytest.approx(expected)
