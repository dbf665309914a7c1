"""Beat tasks: the backlog scheduler, the outbox sweep, the stuck-job reaper, provider re-checks, the
purge of expired idempotency keys and the retention purge."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pipeline import batch_import, retention
from pipeline.db import backlog, idempotency, jobs, provider_checks
from pipeline.db.models import Job, JobStep, utcnow
from pipeline.db.session import transaction
from pipeline.settings import Settings
from schemas.common import UNFINISHED, Stage
from workers import outbox
from workers.app import app
from workers.batch_import import send_import
from workers.context import worker_context
from workers.workflow import start_job

log = logging.getLogger(__name__)

MAX_REDRIVES = 3


@app.task(name="maintenance.relay_outbox", ignore_result=True)
def relay_outbox() -> int:
    ctx = worker_context()
    # Rows younger than one sweep are still being published by the API that wrote them.
    return outbox.relay(ctx.sessions, older_than_s=ctx.settings.outbox_sweep_s)


@app.task(name="maintenance.release_backlog", ignore_result=True)
def release_backlog() -> int:
    ctx = worker_context()
    return release(ctx.sessions, ctx.settings)


def release(sessions: sessionmaker[Session], settings: Settings) -> int:
    """Release batch items fairly up to the caps (pipeline/db/backlog.py), then publish them.

    The release and its outbox rows commit together; publishing follows the commit, and a publish
    that fails is left to the outbox sweep, so a released item is never stranded.
    """
    with transaction(sessions) as session:
        released = backlog.release_due(session, settings, now=utcnow())
    if released:
        try:
            outbox.relay(sessions, job_ids=released, limit=len(released))
        except Exception:
            log.warning("publish deferred to the outbox sweep", exc_info=True)
    return len(released)


@app.task(name="maintenance.resume_imports", ignore_result=True)
def resume_imports() -> int:
    """Re-send server-side imports whose task was lost (a crash mid-listing): they resume at the
    page after the last one saved."""
    stalled = batch_import.stalled(worker_context().sessions)
    for batch_id in stalled:
        send_import(batch_id)
    return len(stalled)


@app.task(name="maintenance.reap_stuck_jobs", ignore_result=True)
def reap_stuck_jobs() -> int:
    ctx = worker_context()
    return reap(ctx.sessions, ctx.settings)


def reap(sessions: sessionmaker[Session], settings: Settings) -> int:
    """Re-drive jobs that stopped progressing; fail them after MAX_REDRIVES. Two rules:

    - a step `running` or `retrying` past the hard time limit (+ a minute): its worker died, or
      its retry message was lost;
    - any unfinished job silent for SILENT_JOB_AFTER_S: a start or next-stage message was lost.
      Deliberately long, because a job whose next task waits behind a nightly backlog is healthy
      and re-driving it early would only feed the backlog with duplicates.
    Re-sending the chain is safe: finished stages are skipped by their artifacts.
    """
    now = utcnow()
    stuck_after_s = settings.stage_hard_limit_s + 60
    current = (JobStep.job_id == Job.id) & (JobStep.stage == Job.stage)
    dead_step = JobStep.state.in_(("running", "retrying")) & (
        Job.updated_at < now - timedelta(seconds=stuck_after_s)
    )
    silent = Job.updated_at < now - timedelta(seconds=settings.silent_job_after_s)
    with transaction(sessions) as session:
        stuck = session.scalars(
            select(Job)
            .outerjoin(JobStep, current)
            # A batch item still in the backlog is waiting its turn, not stuck (released_at NULL).
            .where(Job.status.in_(UNFINISHED), Job.released_at.is_not(None), dead_step | silent)
            .limit(100)
            .with_for_update(of=Job, skip_locked=True)
        ).all()
        for job in stuck:
            _redrive_or_fail(session, job, settings)
    return len(stuck)


def _redrive_or_fail(session: Session, job: Job, settings: Settings) -> None:
    if job.redrives >= MAX_REDRIVES:
        stage = Stage(job.stage) if job.stage else None
        message = "the job stopped progressing"
        jobs.fail_job(session, job, stage, code="stuck", message=message, settings=settings)
        return
    job.redrives += 1
    job.updated_at = utcnow()
    # Published before the commit: if the commit then fails, the job runs once more uncounted,
    # which idempotent stages absorb; publishing after it could lose the re-drive instead.
    start_job(job)
    log.warning("re-drove a stuck job", extra={"job_id": job.id, "stage": job.stage})


@app.task(name="maintenance.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> int:
    """Delete expired Idempotency-Key rows (claims already ignore them; this only frees space)."""
    with transaction(worker_context().sessions) as session:
        return idempotency.purge_expired(session, now=utcnow())


@app.task(name="maintenance.purge_expired", ignore_result=True)
def purge_expired() -> int:
    """Purge what tenants' retention says has expired (pipeline/retention.py); returns jobs touched."""
    ctx = worker_context()
    report = retention.purge_expired(ctx.sessions, ctx.blobs, ctx.settings, now=utcnow())
    if report.batches:
        log.info("retention purge", extra={"inputs": report.inputs, "jobs": report.jobs})
    return report.inputs + report.jobs


@app.task(name="maintenance.send_due_checks", ignore_result=True)
def send_due_checks() -> int:
    ctx = worker_context()
    return send_checks(ctx.sessions, lease_s=ctx.settings.stage_hard_limit_s)


def send_checks(sessions: sessionmaker[Session], *, lease_s: float) -> int:
    """Re-send the chain of every job whose provider re-check is due.

    The waiting stage (transcribe or analyze) then checks its provider once; finished stages are
    skipped by their artifacts. A send that is lost is repeated after `lease_s`.
    """
    with transaction(sessions) as session:
        due = provider_checks.claim_due(session, lease_s=lease_s)
        for job in due:
            start_job(job)
    return len(due)
