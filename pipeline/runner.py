"""Run one stage of one job with the bookkeeping every stage shares.

An artifact that already exists means the stage is done (idempotent under redelivery); a terminal
job is never touched again; attempts per (job, stage) are counted in the database and capped, so a
poison input that kills its worker cannot loop forever.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from pipeline import artifacts, metrics
from pipeline.context import Context
from pipeline.db import jobs, provider_checks
from pipeline.db.models import utcnow
from pipeline.db.session import transaction
from pipeline.errors import DatabaseUnavailable, NotReady, PipelineError, TransientError
from pipeline.logs import bound
from pipeline.stages import StageOutput, analyze, diarize, persist, score, transcribe
from schemas.common import STAGES, JobStatus, Stage
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


@dataclass(frozen=True)
class Advanced:
    """A stage is done: the envelope it leaves, and its committed hand-off to the next stage (an
    outbox row the caller publishes, then marks), if there is a next stage."""

    envelope: JobEnvelope
    handoff: jobs.Handoff | None
    message_id: int | None


def run_stage(
    stage: Stage, envelope: JobEnvelope, ctx: Context, *, retries: int = 0
) -> Advanced | None:
    """Run `stage`; return what it leaves for the next stage, or None when the job stops here.

    `retries` counts the deliberate retries behind this run (see `jobs.begin_stage`). Raises
    PipelineError subclasses only: a database that is unreachable, locked or deadlocked is a
    DatabaseUnavailable (a TransientError). The caller decides retry or failure.
    """
    began, outcome = time.perf_counter(), "error"
    context = bound(job_id=envelope.job_id, tenant_id=envelope.tenant_id, stage=stage.value)
    try:
        with context:  # every line logged meanwhile carries the job, its tenant and the stage
            outcome, advanced = _run_stage(stage, envelope, ctx, retries=retries)
    except TRANSIENT_DB_ERRORS as exc:
        error = DatabaseUnavailable(f"database unavailable ({type(exc).__name__})")
        _count_error(stage, error)
        raise error from exc
    except Exception as exc:
        _count_error(stage, exc)
        raise
    finally:
        elapsed = time.perf_counter() - began
        metrics.STAGE_DURATION.labels(stage.value, outcome).observe(elapsed)
    return advanced


def _count_error(stage: Stage, exc: Exception) -> None:
    """By the code the task's policy (workers/base.py) records; Celery's soft time limit is named,
    not imported, to keep Celery out of pipeline/."""
    if isinstance(exc, PipelineError):
        code, transient = exc.code, isinstance(exc, TransientError)
    elif type(exc).__name__ == "SoftTimeLimitExceeded":
        code, transient = "stage_timeout", True
    else:
        code, transient = "internal_error", False
    kind = "transient" if transient else "permanent"
    metrics.STAGE_ERRORS.labels(stage.value, code, kind).inc()


def _run_stage(
    stage: Stage, envelope: JobEnvelope, ctx: Context, *, retries: int
) -> tuple[str, Advanced | None]:
    """The stage's outcome (a `callintel_stage_duration_seconds` label) and what it leaves."""
    key = artifacts.artifact_key(envelope, stage)
    done_before = stage is not Stage.PERSIST and ctx.blobs.exists(key)
    settings = ctx.settings
    with transaction(ctx.sessions, durable=False) as session:
        job = jobs.lock_job(session, envelope.job_id)
        if job is None or JobStatus(job.status).terminal:
            return "ignored", None
        batch = job.batch_id is not None
        if done_before:
            return "skipped", _finish(
                session, ctx, envelope, stage, key, batch=batch, provider=None, model=None
            )
        start = jobs.begin_stage(
            session,
            job,
            stage,
            max_attempts=settings.max_stage_attempts,
            retries=retries,
            deadlines=settings.deadlines,
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
            return "gave_up", None
    metrics.STAGE_ATTEMPTS.labels(stage.value).inc()
    began = time.perf_counter()
    try:
        with HEARTBEAT.beating(ctx, envelope.job_id, stage):
            output = STAGE_RUNNERS[stage](envelope, ctx)
    except NotReady as exc:
        _park(ctx, envelope, stage, after_s=exc.retry_after_s or settings.provider_recheck_s)
        return "parked", None
    if stage is not Stage.PERSIST:
        artifacts.save(ctx.blobs, key, output.artifact)
    with transaction(ctx.sessions, durable=False) as session:
        advanced = _finish(
            session,
            ctx,
            envelope,
            stage,
            key,
            batch=batch,
            provider=output.provider,
            model=output.model,
        )
    log.info(
        "stage done",
        extra={"job_id": envelope.job_id, "stage": stage.value, "ms": _ms_since(began)},
    )
    return "done", advanced


def _finish(
    session: Session,
    ctx: Context,
    envelope: JobEnvelope,
    stage: Stage,
    key: str,
    *,
    batch: bool,
    provider: str | None,
    model: str | None,
) -> Advanced:
    """Mark `stage` done and commit its hand-off to the next stage in the same transaction."""
    following = _advance(envelope, stage, key)
    after = next_stage(stage)
    handoff = jobs.Handoff(after, following, batch) if after else None
    message_id = jobs.finish_stage(
        session,
        envelope.job_id,
        stage,
        provider=provider,
        model=model,
        handoff=handoff,
        claim_s=ctx.settings.outbox_claim_s,
        deadlines=ctx.settings.deadlines,
    )
    return Advanced(following, handoff, message_id)


def next_stage(stage: Stage) -> Stage | None:
    """The stage after `stage` in the pipeline, None after the last."""
    at = STAGES.index(stage) + 1
    return STAGES[at] if at < len(STAGES) else None


class Heartbeat:
    """One thread per worker process extends the deadline of the stages running in it.

    A stage's job must send a heartbeat within the running deadline; one that stops (its worker
    was killed) is re-driven by the reaper. One UPDATE per period covers every stage running in
    the process, whatever their number. A stage running past the hard time limit gets no more
    heartbeats, so one that hangs where no time limit reaches it (a thread pool) is re-driven too.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], tuple[int, float]] = {}  # → (count, began)
        self._ctx: Context | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    @contextmanager
    def beating(self, ctx: Context, job_id: str, stage: Stage) -> Iterator[None]:
        key = (job_id, stage.value)
        with self._lock:
            count, _ = self._running.get(key, (0, 0.0))
            self._running[key] = (count + 1, time.monotonic())
            self._start(ctx)
        try:
            yield
        finally:
            with self._lock:
                count, began = self._running.pop(key)
                if count > 1:
                    self._running[key] = (count - 1, began)

    def _start(self, ctx: Context) -> None:
        self._ctx = ctx
        alive = self._thread is not None and self._thread.is_alive()
        if alive and self._pid == os.getpid():
            return
        # First use, or a forked child (threads do not survive a fork): start this process's own.
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._loop, name="stage-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            ctx = self._ctx
            time.sleep(ctx.settings.heartbeat_s if ctx else 1.0)
            if ctx is None:
                continue
            oldest = time.monotonic() - ctx.settings.stage_hard_limit_s
            with self._lock:
                running = [key for key, (_, began) in self._running.items() if began > oldest]
            if running:
                self._beat(ctx, running)

    @staticmethod
    def _beat(ctx: Context, running: list[tuple[str, str]]) -> None:
        try:
            with transaction(ctx.sessions, durable=False) as session:
                jobs.extend_deadline(session, running, ctx.settings.deadlines.running(utcnow()))
        except Exception:  # the database may be what is failing; the next beat tries again
            log.warning("heartbeat not recorded", extra={"jobs": len(running)}, exc_info=True)


HEARTBEAT = Heartbeat()


def _park(ctx: Context, envelope: JobEnvelope, stage: Stage, *, after_s: float) -> None:
    """A provider is still working: end this task cleanly and let the database schedule the check."""
    with transaction(ctx.sessions) as session:
        at = provider_checks.schedule_check(
            session, envelope.job_id, stage, after_s=after_s, deadlines=ctx.settings.deadlines
        )
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


def note_retry(
    ctx: Context, envelope: JobEnvelope, stage: Stage, *, code: str, retry_in_s: float
) -> None:
    """Show the retry on the step and push the job's deadline past it; best effort, since the
    database may be what is failing."""
    try:
        with transaction(ctx.sessions, durable=False) as session:
            step = jobs.get_step(session, envelope.job_id, stage)
            step.state, step.error_code = "retrying", code
            job = jobs.lock_job(session, envelope.job_id)
            if job is not None:
                job.updated_at = utcnow()
                retry_at = job.updated_at + timedelta(seconds=retry_in_s)
                job.next_action_at = ctx.settings.deadlines.queued(retry_at)
    except TRANSIENT_DB_ERRORS:
        log.warning("could not record the retry", extra={"job_id": envelope.job_id})


def _advance(envelope: JobEnvelope, stage: Stage, key: str) -> JobEnvelope:
    if stage is Stage.PERSIST:  # its output is the database row, not an artifact
        return envelope
    return envelope.model_copy(update={"artifacts": {**envelope.artifacts, stage.value: key}})


def _ms_since(began: float) -> int:
    return int((time.perf_counter() - began) * 1000)
