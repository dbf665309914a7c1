"""Job bookkeeping on both databases: stage start/finish marks, timings, terminal states."""

from __future__ import annotations

import time

from sqlalchemy.orm import Session, sessionmaker

from pipeline.db import jobs
from pipeline.db.models import Job, JobStep
from pipeline.db.session import transaction
from pipeline.settings import Settings
from schemas.common import Stage
from tests.support.jobs import queued_job

SETTINGS = Settings()  # only the webhook schedule and link base are read here


def new_job(db: sessionmaker[Session]) -> str:
    with transaction(db) as session:
        return queued_job(session).id


def step(db: sessionmaker[Session], job_id: str, stage: Stage) -> JobStep:
    with db() as session:
        row = session.get(JobStep, (job_id, stage.value))
        assert row is not None
        return row


def test_finish_records_state_timing_and_provider(db: sessionmaker[Session]) -> None:
    job_id = new_job(db)
    with transaction(db) as session:
        job = jobs.lock_job(session, job_id)
        assert job is not None
        start = jobs.begin_stage(session, job, Stage.TRANSCRIBE, max_attempts=3)
    assert (start.attempts, start.over_cap) == (1, False)
    time.sleep(0.05)
    with transaction(db, durable=False) as session:
        jobs.finish_stage(
            session, job_id, Stage.TRANSCRIBE, provider="local-whisper", model="tiny.en"
        )

    done = step(db, job_id, Stage.TRANSCRIBE)
    assert (done.state, done.provider, done.model) == ("succeeded", "local-whisper", "tiny.en")
    assert done.duration_ms is not None and 50 <= done.duration_ms < 60_000
    with db() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == "transcribing"


def test_a_second_finish_keeps_the_first_timings(db: sessionmaker[Session]) -> None:
    job_id = new_job(db)
    with transaction(db) as session:
        job = jobs.lock_job(session, job_id)
        assert job is not None
        jobs.begin_stage(session, job, Stage.DIARIZE, max_attempts=3)
    with transaction(db) as session:
        jobs.finish_stage(session, job_id, Stage.DIARIZE, provider="local-channel", model=None)
    first = step(db, job_id, Stage.DIARIZE)
    with transaction(db) as session:  # a redelivered message that found the artifact
        jobs.finish_stage(session, job_id, Stage.DIARIZE, provider=None, model=None)
    again = step(db, job_id, Stage.DIARIZE)
    assert (again.finished_at, again.duration_ms, again.provider) == (
        first.finished_at,
        first.duration_ms,
        "local-channel",
    )


def test_terminal_states_never_change_back(db: sessionmaker[Session]) -> None:
    job_id = new_job(db)
    with transaction(db) as session:
        job = jobs.lock_job(session, job_id)
        assert job is not None
        assert jobs.fail_job(
            session, job, Stage.TRANSCRIBE, code="invalid_audio", message="x", settings=SETTINGS
        )
        assert not jobs.complete_job(session, job, schema_version="v", body={}, settings=SETTINGS)
        assert not jobs.fail_job(
            session, job, Stage.DIARIZE, code="other", message="y", settings=SETTINGS
        )
    with db() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.error_code, job.error_stage) == (
            "failed",
            "invalid_audio",
            "transcribe",
        )


def test_only_lost_deliveries_count_against_the_attempts_cap(db: sessionmaker[Session]) -> None:
    job_id = new_job(db)

    def start(retries: int) -> jobs.StageStart:
        with transaction(db) as session:
            job = jobs.lock_job(session, job_id)
            assert job is not None
            return jobs.begin_stage(session, job, Stage.TRANSCRIBE, max_attempts=2, retries=retries)

    # Five deliberate retries after transient errors: never over the cap, nothing lost.
    assert [(s.lost, s.over_cap) for s in (start(r) for r in range(6))] == [(0, False)] * 6
    # The last retry's worker dies twice (the same message comes back with the same count).
    once, twice = start(5), start(5)
    assert [(once.lost, once.over_cap), (twice.lost, twice.over_cap)] == [(1, False), (2, True)]
