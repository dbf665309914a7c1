"""Beat tasks: the outbox sweep and the stuck-job reaper."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from pipeline.db import jobs
from pipeline.db.models import Job, utcnow
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
    """Re-drive jobs whose stage outlived its hard time limit (its worker died); fail after a cap."""
    ctx = worker_context()
    cutoff = utcnow() - timedelta(seconds=ctx.settings.stage_hard_limit_s + 60)
    with transaction(ctx.sessions) as session:
        stuck = session.scalars(
            select(Job)
            .where(Job.status.in_(RUNNING), Job.updated_at < cutoff)
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
