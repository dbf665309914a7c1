"""The stage runner against real PostgreSQL and moto's S3: skipping done work, racing duplicates."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select

from api.auth import Caller
from api.intake import accept_transcript
from pipeline import runner
from pipeline.context import Context, build_context
from pipeline.db.models import Job, JobResult, JobStep
from pipeline.errors import TransientError
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


def test_a_rerun_skips_every_finished_stage(app: Flask, ctx: Context, tenant: TenantKey) -> None:
    first = new_envelope(app, ctx, tenant)
    envelope: JobEnvelope | None = first
    for stage in STAGES[:-1]:
        assert envelope is not None
        envelope = runner.run_stage(stage, envelope, ctx)
    again: JobEnvelope | None = first  # the whole chain re-sent, as the reaper does
    for stage in STAGES[:-1]:
        assert again is not None
        again = runner.run_stage(stage, again, ctx)
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
    envelope: JobEnvelope | None = new_envelope(app, ctx, tenant)
    for stage in STAGES[:-1]:
        assert envelope is not None
        envelope = runner.run_stage(stage, envelope, ctx)
    assert envelope is not None
    ready = threading.Barrier(2)
    results: list[JobEnvelope | None] = []

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
    with pytest.raises(TransientError, match="database unavailable"):
        runner.run_stage(Stage.TRANSCRIBE, envelope, broken)
    broken.sessions.kw["bind"].dispose()
