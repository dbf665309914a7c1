"""The stage runner against real PostgreSQL and moto's S3: skipping done work, racing duplicates."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from api.auth import Caller
from api.intake import accept_transcript
from pipeline import runner
from pipeline.context import Context, build_context
from pipeline.db import jobs
from pipeline.db.models import Job, JobResult, JobStep, OutboxMessage, utcnow
from pipeline.db.session import transaction
from pipeline.errors import DatabaseUnavailable
from pipeline.settings import Settings
from schemas.common import STAGES, Stage
from schemas.envelope import JobEnvelope
from tests.conftest import TenantKey
from tests.support.services import free_port

TRANSCRIPT = {
    "transcript": "Agent: Thank you for calling, my name is Ann.\nCustomer: Hi, I need help."
}


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = build_context(settings)
    yield context
    context.sessions.kw["bind"].dispose()


def new_envelope(app: Flask, ctx: Context, tenant: TenantKey) -> JobEnvelope:
    caller = Caller(tenant_id=tenant.tenant_id, tenant_name="acme", config={})
    job = accept_transcript(app.extensions["callintel"], caller, TRANSCRIPT)
    with ctx.sessions() as session:
        row = session.get(Job, job.id)
        assert row is not None
        return JobEnvelope.model_validate(row.envelope)


def run_through(envelope: JobEnvelope, stages: Sequence[Stage], ctx: Context) -> JobEnvelope:
    """Run `stages` in order the way their tasks would, each on the envelope the last one left."""
    for stage in stages:
        advanced = runner.run_stage(stage, envelope, ctx)
        assert advanced is not None
        envelope = advanced.envelope
    return envelope


def test_a_rerun_skips_every_finished_stage(app: Flask, ctx: Context, tenant: TenantKey) -> None:
    first = new_envelope(app, ctx, tenant)
    run_through(first, STAGES[:-1], ctx)
    run_through(first, STAGES[:-1], ctx)  # the whole pipeline re-sent, as the reaper does
    with ctx.sessions() as session:
        attempts = session.scalars(
            select(JobStep.attempts).where(
                JobStep.job_id == first.job_id, JobStep.stage != "persist"
            )
        ).all()
    assert sorted(attempts) == [1, 1, 1, 1]  # skipped by their artifacts, not run again


def test_racing_persist_deliveries_store_one_result(
    app: Flask, ctx: Context, tenant: TenantKey
) -> None:
    envelope = run_through(new_envelope(app, ctx, tenant), STAGES[:-1], ctx)
    ready = threading.Barrier(2)
    results: list[runner.Advanced | None] = []

    def deliver() -> None:
        ready.wait()
        results.append(runner.run_stage(Stage.PERSIST, envelope, ctx))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with ctx.sessions() as session:
        stored = session.scalar(
            select(func.count()).select_from(JobResult).where(JobResult.job_id == envelope.job_id)
        )
        job = session.get(Job, envelope.job_id)
        assert job is not None
        assert (stored, job.status) == (1, "completed")
    assert len(results) == 2


def test_an_unreachable_database_is_a_transient_error(
    app: Flask, ctx: Context, tenant: TenantKey, settings: Settings
) -> None:
    envelope = new_envelope(app, ctx, tenant)
    down = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"}
    )
    broken = build_context(down)
    with pytest.raises(DatabaseUnavailable, match="database unavailable"):
        runner.run_stage(Stage.TRANSCRIBE, envelope, broken)
    broken.sessions.kw["bind"].dispose()


def deadline_of(ctx: Context, job_id: str) -> timedelta | None:
    """How far in the future the job's next action is due (None: no deadline)."""
    with ctx.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.next_action_at - utcnow() if job.next_action_at else None


def test_each_stage_commits_its_hand_off_and_the_deadline_follows(
    app: Flask, ctx: Context, tenant: TenantKey
) -> None:
    envelope = new_envelope(app, ctx, tenant)
    queued = timedelta(seconds=ctx.settings.queued_deadline_s)
    assert timedelta(0) < (deadline_of(ctx, envelope.job_id) or timedelta(0)) <= queued
    for stage, following in zip(STAGES, [*STAGES[1:], None], strict=True):
        advanced = runner.run_stage(stage, envelope, ctx)
        assert advanced is not None
        envelope = advanced.envelope
        with ctx.sessions() as session:
            rows = session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.job_id == envelope.job_id, OutboxMessage.topic == "pipeline.stage"
                )
                .order_by(OutboxMessage.id)
            ).all()
        if following is None:  # persist: the job is finished, nothing is due any more
            assert advanced.handoff is None and advanced.message_id is None
            assert deadline_of(ctx, envelope.job_id) is None
            break
        # The hand-off is in the outbox, claimed for the task to publish, with the next envelope.
        row = rows[-1]
        assert advanced.message_id == row.id and advanced.handoff is not None
        assert row.payload["stage"] == following.value == advanced.handoff.stage.value
        assert row.payload["envelope"]["artifacts"] == envelope.artifacts
        assert row.published_at is None and row.claimed_until is not None
        assert row.claimed_until > utcnow()
        assert timedelta(0) < (deadline_of(ctx, envelope.job_id) or timedelta(0)) <= queued


def test_a_running_stage_sends_heartbeats(app: Flask, ctx: Context, tenant: TenantKey) -> None:
    envelope = new_envelope(app, ctx, tenant)
    with transaction(ctx.sessions) as session:
        job = session.get(Job, envelope.job_id)
        assert job is not None
        jobs.begin_stage(session, job, Stage.TRANSCRIBE, max_attempts=3)
    fast = build_context(
        ctx.settings.model_copy(update={"heartbeat_s": 0.1, "running_deadline_s": 3600})
    )
    heartbeat = runner.Heartbeat()
    try:
        assert (deadline_of(ctx, envelope.job_id) or timedelta(0)) < timedelta(seconds=3600)
        with heartbeat.beating(fast, envelope.job_id, Stage.TRANSCRIBE):
            until = time.monotonic() + 10
            while (deadline_of(ctx, envelope.job_id) or timedelta(0)) < timedelta(seconds=3590):
                assert time.monotonic() < until, "no heartbeat in 10 s"
                time.sleep(0.05)
        with transaction(ctx.sessions) as session:  # the stage ended: beats stop
            session.execute(
                update(Job).where(Job.id == envelope.job_id).values(next_action_at=utcnow())
            )
        time.sleep(0.5)
        assert (deadline_of(ctx, envelope.job_id) or timedelta(0)) <= timedelta(0)
    finally:
        fast.sessions.kw["bind"].dispose()


def test_a_late_heartbeat_leaves_a_finished_stage_alone(
    app: Flask, ctx: Context, tenant: TenantKey
) -> None:
    """A beat that was on its way when the stage finished must not shorten the next stage's wait
    for its queue to the running deadline."""
    envelope = new_envelope(app, ctx, tenant)
    advanced = runner.run_stage(Stage.TRANSCRIBE, envelope, ctx)
    assert advanced is not None
    queued = deadline_of(ctx, envelope.job_id)
    with transaction(ctx.sessions) as session:
        soon = utcnow() + timedelta(seconds=5)
        jobs.extend_deadline(session, [(envelope.job_id, Stage.TRANSCRIBE.value)], soon)
    after = deadline_of(ctx, envelope.job_id)
    assert queued is not None and after is not None
    assert after > timedelta(seconds=60)  # still the queued deadline, not 5 s
