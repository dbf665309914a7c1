"""Run one stage of one job with the bookkeeping every stage shares.

An artifact that already exists means the stage is done (idempotent under redelivery); a terminal
job is never touched again; attempts per (job, stage) are counted in the database and capped, so a
poison input that kills its worker cannot loop forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from pipeline import artifacts
from pipeline.context import Context
from pipeline.db import jobs, provider_checks
from pipeline.db.models import utcnow
from pipeline.db.session import transaction
from pipeline.errors import NotReady, TransientError
from pipeline.stages import StageOutput, analyze, diarize, persist, score, transcribe
from schemas.common import JobStatus, Stage
from schemas.envelope import JobEnvelope

log = logging.getLogger(__name__)

# Connection loss, timeouts waiting for a pooled connection, deadlocks, "database is locked".
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError, PoolTimeout)

STAGE_RUNNERS: dict[Stage, Callable[[JobEnvelope, Context], StageOutput]] = {
    Stage.TRANSCRIBE: transcribe.run,
    Stage.DIARIZE: diarize.run,
    Stage.ANALYZE: analyze.run,
    Stage.SCORE: score.run,
    Stage.PERSIST: persist.run,
}


def run_stage(
    stage: Stage, envelope: JobEnvelope, ctx: Context, *, retries: int = 0
) -> JobEnvelope | None:
    """Run `stage`; return the envelope for the next stage, or None when the job must stop here.

    `retries` counts the deliberate retries behind this run (see `jobs.begin_stage`). Raises
    PipelineError subclasses only: a database that is unreachable, locked or deadlocked is a
    TransientError like any other passing fault. The caller decides retry or failure.
    """
    try:
        return _run_stage(stage, envelope, ctx, retries=retries)
    except TRANSIENT_DB_ERRORS as exc:
        raise TransientError(f"database unavailable ({type(exc).__name__})") from exc


def _run_stage(
    stage: Stage, envelope: JobEnvelope, ctx: Context, *, retries: int
) -> JobEnvelope | None:
    key = artifacts.artifact_key(envelope, stage)
    done_before = stage is not Stage.PERSIST and ctx.blobs.exists(key)
    with transaction(ctx.sessions, durable=False) as session:
        job = jobs.lock_job(session, envelope.job_id)
        if job is None or JobStatus(job.status).terminal:
            return None
        if done_before:
            jobs.finish_stage(session, job.id, stage, provider=None, model=None)
            return _advance(envelope, stage, key)
        start = jobs.begin_stage(
            session, job, stage, max_attempts=ctx.settings.max_stage_attempts, retries=retries
        )
        if start.over_cap:
            message = f"gave up: the worker running this stage died {start.lost} times"
            jobs.fail_job(
                session,
                job,
                stage,
                code="attempts_exhausted",
                message=message,
                settings=ctx.settings,
            )
            return None
    began = time.perf_counter()
    try:
        output = STAGE_RUNNERS[stage](envelope, ctx)
    except NotReady as exc:
        _park(ctx, envelope, stage, after_s=exc.retry_after_s or ctx.settings.provider_recheck_s)
        return None
    if stage is not Stage.PERSIST:
        artifacts.save(ctx.blobs, key, output.artifact)
    with transaction(ctx.sessions, durable=False) as session:
        jobs.finish_stage(
            session, envelope.job_id, stage, provider=output.provider, model=output.model
        )
    log.info(
        "stage done",
        extra={"job_id": envelope.job_id, "stage": stage.value, "ms": _ms_since(began)},
    )
    return _advance(envelope, stage, key)


def _park(ctx: Context, envelope: JobEnvelope, stage: Stage, *, after_s: float) -> None:
    """A provider is still working: end this task cleanly and let the database schedule the check."""
    with transaction(ctx.sessions) as session:
        at = provider_checks.schedule_check(session, envelope.job_id, stage, after_s=after_s)
    log.info(
        "stage waits on its provider",
        extra={"job_id": envelope.job_id, "stage": stage.value, "check_at": at.isoformat()},
    )


def fail(ctx: Context, envelope: JobEnvelope, stage: Stage, *, code: str, message: str) -> None:
    """Fail the job at `stage` (no-op when it is already terminal)."""
    with transaction(ctx.sessions) as session:
        job = jobs.lock_job(session, envelope.job_id)
        if job is not None:
            jobs.fail_job(session, job, stage, code=code, message=message, settings=ctx.settings)


def note_retry(ctx: Context, envelope: JobEnvelope, stage: Stage, *, code: str) -> None:
    """Show the retry on the step; best effort, since the database may be what is failing."""
    try:
        with transaction(ctx.sessions, durable=False) as session:
            step = jobs.get_step(session, envelope.job_id, stage)
            step.state, step.error_code = "retrying", code
            job = jobs.lock_job(session, envelope.job_id)
            if job is not None:
                job.updated_at = utcnow()
    except TRANSIENT_DB_ERRORS:
        log.warning("could not record the retry", extra={"job_id": envelope.job_id})


def _advance(envelope: JobEnvelope, stage: Stage, key: str) -> JobEnvelope:
    if stage is Stage.PERSIST:  # its output is the database row, not an artifact
        return envelope
    return envelope.model_copy(update={"artifacts": {**envelope.artifacts, stage.value: key}})


def _ms_since(began: float) -> int:
    return int((time.perf_counter() - began) * 1000)
