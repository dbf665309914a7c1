"""Beat tasks, on their own `maintenance` queue: the backlog scheduler (batch items and rescores),
the outbox sweep, the stuck-job reaper, provider re-checks, the purge of expired idempotency keys,
the retention purge and the operational gauges."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pipeline import batch_import, gauges, retention
from pipeline.db import backlog, idempotency, jobs, provider_checks, rescore_backlog
from pipeline.db.models import Job, utcnow
from pipeline.db.session import transaction
from pipeline.settings import Settings
from schemas.common import UNFINISHED, Stage
from workers import outbox
from workers.app import app
from workers.batch_import import send_import
from workers.context import worker_context
from workers.workflow import start_job

log = logging.getLogger(__name__)


@app.task(name="maintenance.relay_outbox", ignore_result=True)
def relay_outbox() -> int:
    """Publish rows their writer did not (it crashed, or the broker was down); drop old ones."""
    ctx = worker_context()
    # Rows younger than one sweep are still being published by the API that wrote them.
    settings = ctx.settings
    sent = outbox.relay(
        ctx.sessions, older_than_s=settings.outbox_sweep_s, claim_s=settings.outbox_claim_s
    )
    outbox.purge_published(ctx.sessions)
    return sent


@app.task(name="maintenance.release_backlog", ignore_result=True)
def release_backlog() -> int:
    ctx = worker_context()
    return release(ctx.sessions, ctx.settings) + release_rescores(ctx.sessions, ctx.settings)


def release(sessions: sessionmaker[Session], settings: Settings) -> int:
    """Release batch items fairly up to the caps (pipeline/db/backlog.py), then publish them.

    The release and its outbox rows commit together; publishing follows the commit, and a publish
    that fails is left to the outbox sweep, so a released item is never stranded.
    """
    with transaction(sessions) as session:
        released = backlog.release_due(session, settings, now=utcnow())
    if released:
        outbox.publish_after_commit(sessions, released)
    return len(released)


def release_rescores(sessions: sessionmaker[Session], settings: Settings) -> int:
    """Release waiting rescores fairly up to their caps (pipeline/db/rescore_backlog.py), then
    publish them; like batch items, the release and its outbox rows commit together."""
    with transaction(sessions) as session:
        released = rescore_backlog.release_due(session, settings, now=utcnow())
    if released:
        outbox.publish_after_commit(sessions, released)
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
    """Re-drive every unfinished job whose next action is overdue, whatever state its steps are in.

    Each unfinished, released job carries `next_action_at` (docs/recovery.md): a published stage
    must start within the queued deadline, a running one must keep sending heartbeats, a retry or a
    provider check is due at its time. Past it, a message was lost (a broker that lost it, a worker
    killed with it, a publish that failed and whose outbox row is gone): the job's first stage is
    sent again, through the outbox, and finished stages are skipped by their artifacts. A job
    re-driven `max_redrives` times without progress fails `stuck`; each re-drive doubles the wait
    before the next, so a queue that is merely long is not flooded with duplicates.
    """
    now = utcnow()
    with transaction(sessions) as session:
        overdue = session.scalars(
            select(Job)
            .where(Job.next_action_at < now, Job.status.in_(UNFINISHED))
            .order_by(Job.next_action_at)
            .limit(200)
            .with_for_update(skip_locked=True)
        ).all()
        redriven = [job.id for job in overdue if _redrive_or_fail(session, job, settings, now)]
    if redriven:
        outbox.publish_after_commit(sessions, redriven)
    return len(overdue)


def _redrive_or_fail(session: Session, job: Job, settings: Settings, now: datetime) -> bool:
    if job.redrives >= settings.max_redrives:
        stage = Stage(job.stage) if job.stage else None
        message = f"the job stopped progressing and was re-driven {job.redrives} times"
        jobs.fail_job(session, job, stage, code="stuck", message=message, settings=settings)
        return False
    job.redrives += 1
    job.updated_at = now
    wait_s = settings.queued_deadline_s * 2 ** (job.redrives - 1)  # 1, 2, 4 … deadlines
    job.next_action_at = now + timedelta(seconds=wait_s)
    session.add(jobs.start_message(job.id))
    log.warning(
        "re-drove an overdue job",
        extra={"job_id": job.id, "stage": job.stage, "redrives": job.redrives},
    )
    return True


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
    # Published after the claim committed, with no connection held: a broker that fails leaves the
    # checks claimed, and they are due again when the lease ends.
    for job in due:
        try:
            start_job(job)
        except Exception:
            log.warning("provider check deferred to the next lease", exc_info=True)
            break
    return len(due)


@app.task(name="maintenance.sample_gauges", ignore_result=True)
def sample_gauges() -> None:
    """Sample queue depth, backlog, outbox and overdue jobs into gauges (pipeline/gauges.py)."""
    ctx = worker_context()
    gauges.publish(gauges.sample(ctx.sessions, ctx.settings.redis_url, now=utcnow()))
