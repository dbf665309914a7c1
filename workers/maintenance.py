"""Beat tasks: the outbox sweep, the stuck-job reaper and the purge of expired idempotency keys."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db import idempotency, jobs
from pipeline.db.models import Job, JobStep, utcnow
from pipeline.db.session import transaction
from schemas.common import JobStatus
from schemas.envelope import JobEnvelope
from workers import outbox
from workers.app import app
from workers.context import worker_context
from workers.workflow import start_pipeline

log = logging.getLogger(__name__)

MAX_REDRIVES = 3
RUNNING = [s.value for s in JobStatus if not s.terminal and s is not JobStatus.QUEUED]


@app.task(name="maintenance.relay_outbox", ignore_result=True)
def relay_outbox() -> int:
    ctx = worker_context()
    # Rows younger than one sweep are still being published by the API that wrote them.
    return outbox.relay(ctx.sessions, older_than_s=ctx.settings.outbox_sweep_s)


@app.task(name="maintenance.reap_stuck_jobs", ignore_result=True)
def reap_stuck_jobs() -> int:
    ctx = worker_context()
    return reap(ctx.sessions, stuck_after_s=ctx.settings.stage_hard_limit_s + 60)


def reap(sessions: sessionmaker[Session], *, stuck_after_s: float) -> int:
    """Re-drive jobs whose stage outlived its hard time limit (its worker died); fail after a cap.

    Only a step that is still `running` counts: a job whose last step succeeded and whose next
    task waits behind a long queue (a nightly backlog) is healthy, and re-driving it would only
    add duplicate work to that queue. Re-sending the chain is safe: finished stages are skipped.
    """
    cutoff = utcnow() - timedelta(seconds=stuck_after_s)
    with transaction(sessions) as session:
        stuck = session.scalars(
            select(Job)
            .join(JobStep, (JobStep.job_id == Job.id) & (JobStep.stage == Job.stage))
            .where(Job.status.in_(RUNNING), JobStep.state == "running", Job.updated_at < cutoff)
            .limit(100)
            .with_for_update(skip_locked=True)
        ).all()
        for job in stuck:
            if job.redrives >= MAX_REDRIVES:
                jobs.fail_job(
                    session, job, None, code="stuck", message="the job stopped progressing"
                )
                continue
            job.redrives += 1
            job.updated_at = utcnow()
            start_pipeline(JobEnvelope.model_validate(job.envelope))
            log.warning("re-drove a stuck job", extra={"job_id": job.id, "stage": job.stage})
    return len(stuck)


@app.task(name="maintenance.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> int:
    """Delete expired Idempotency-Key rows (claims already ignore them; this only frees space)."""
    with transaction(worker_context().sessions) as session:
        return idempotency.purge_expired(session, now=utcnow())
