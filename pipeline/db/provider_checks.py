"""Provider jobs a stage waits on: the provider's id, when it was submitted, when to check next.

A stage that submitted work to a provider (transcribe on AssemblyAI, analyze on Gemini's Batch API)
ends its task instead of holding a worker slot; the re-check is a row here (`next_check_at`) that the
beat turns back into a task when due, or that the provider's completion webhook makes due at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db import jobs
from pipeline.db.models import Job, JobStep, OutboxMessage, utcnow
from pipeline.settings import DEFAULT_DEADLINES, Deadlines
from schemas.common import UNFINISHED, Stage


@dataclass(frozen=True)
class Submission:
    ref: str  # the provider's job id
    submitted_at: datetime


def submission(session: Session, job_id: str, stage: Stage) -> Submission | None:
    step = session.get(JobStep, (job_id, stage.value))
    if step is None or step.provider_ref is None or step.provider_submitted_at is None:
        return None
    return Submission(step.provider_ref, step.provider_submitted_at)


def record_submission(session: Session, job_id: str, stage: Stage, *, ref: str) -> Submission:
    """Remember the provider's id, so a re-run checks that job instead of submitting again."""
    step = jobs.get_step(session, job_id, stage)
    step.provider_ref, step.provider_submitted_at = ref, utcnow()
    return Submission(ref, step.provider_submitted_at)


def schedule_check(
    session: Session,
    job_id: str,
    stage: Stage,
    *,
    after_s: float,
    deadlines: Deadlines = DEFAULT_DEADLINES,
) -> datetime:
    """The provider is still working: park the step until `after_s` from now; the job's deadline
    is the check plus the queued deadline (the check is published by beat, then queued).

    The attempt ended cleanly, so it does not count as a lost delivery (see `jobs.begin_stage`).
    """
    step = jobs.get_step(session, job_id, stage)
    now = utcnow()
    step.state = "waiting"
    step.attempts = max(0, step.attempts - 1)
    step.next_check_at = now + timedelta(seconds=after_s)
    job = session.get(Job, job_id)
    if job is not None:
        job.updated_at = now
        job.next_action_at = deadlines.queued(step.next_check_at)
    return step.next_check_at


def claim_due(session: Session, *, lease_s: float, limit: int = 200) -> list[Job]:
    """Jobs with a due re-check, locked; each check is pushed `lease_s` ahead so that a task lost
    on its way is sent again later, while the task that runs clears or reschedules it."""
    now = utcnow()
    rows = session.execute(
        select(Job, JobStep)
        .join(JobStep, JobStep.job_id == Job.id)
        .where(JobStep.next_check_at <= now, Job.status.in_(UNFINISHED))
        .order_by(JobStep.next_check_at)
        .limit(limit)
        .with_for_update(of=JobStep, skip_locked=True)
    ).all()
    for job, step in rows:
        step.next_check_at = now + timedelta(seconds=lease_s)
        job.updated_at = now
    return [job for job, _step in rows]


def check_now(session: Session, *, job_id: str, ref: str) -> bool:
    """The provider says job `ref` is done: re-check it now (through the outbox, after commit).

    False when no unfinished job of ours waits on that provider id (a late or forged callback).
    """
    found = session.execute(
        select(Job, JobStep)
        .join(JobStep, JobStep.job_id == Job.id)
        .where(Job.id == job_id, JobStep.provider_ref == ref, Job.status.in_(UNFINISHED))
        .with_for_update(of=JobStep)
    ).first()
    if found is None:
        return False
    _job, step = found
    step.next_check_at = utcnow() + timedelta(minutes=5)  # the outbox publishes it now
    session.add(OutboxMessage(topic=jobs.TOPIC_START, job_id=job_id, payload={"job_id": job_id}))
    return True
