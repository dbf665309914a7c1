"""Job state: creation with its outbox row, per-stage bookkeeping, terminal transitions.

Every function takes a Session inside the caller's transaction; none commits. Terminal states
(completed, failed) never change back: each transition re-checks under a row lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, insert, literal, select, tuple_, update
from sqlalchemy.orm import Session

from pipeline.db import batches
from pipeline.db.models import Job, JobResult, JobStep, OutboxMessage, utcnow
from pipeline.metrics import JOB_FAILURES
from pipeline.settings import DEFAULT_DEADLINES, Deadlines, Settings
from pipeline.webhooks import deliveries
from schemas.common import RUNNING_STATUS, STAGES, UNFINISHED, JobStatus, Stage
from schemas.envelope import JobEnvelope

TOPIC_START = "pipeline.start"
TOPIC_STAGE = "pipeline.stage"  # a stage hand-off: the next stage of a job, with its envelope
TOPIC_COMPLETED = "job.completed"
TOPIC_FAILED = "job.failed"


def create_job(
    session: Session,
    envelope: JobEnvelope,
    *,
    external_id: str | None,
    call_type: str | None,
    metadata: dict[str, Any],
    callback_url: str | None = None,
    batch_id: str | None = None,
    item_key: str | None = None,
    deadlines: Deadlines = DEFAULT_DEADLINES,
) -> Job:
    """Insert a queued job and its step rows.

    A one-off job is released at once: an outbox row will start its pipeline, which must begin
    within the queued deadline. A batch item (`batch_id`) waits in the backlog, with no deadline,
    until the scheduler releases it (pipeline/db/backlog.py).
    """
    now = utcnow()
    job = Job(
        id=envelope.job_id,
        tenant_id=envelope.tenant_id,
        status=JobStatus.QUEUED.value,
        stage=None,
        input_kind=envelope.input.kind.value,
        input_sha256=envelope.input.sha256,
        envelope=envelope.model_dump(mode="json"),
        external_id=external_id,
        call_type=call_type,
        meta=metadata,
        callback_url=callback_url,
        batch_id=batch_id,
        item_key=item_key,
        created_at=now,
        updated_at=now,
        released_at=None if batch_id else now,
        next_action_at=None if batch_id else deadlines.queued(now),
    )
    session.add(job)
    session.flush()  # the job row must exist before rows that reference it
    session.add_all(JobStep(job_id=job.id, stage=s.value, attempts=0) for s in STAGES)
    if batch_id is None:
        session.add(start_message(job.id))
    return job


def start_message(job_id: str) -> OutboxMessage:
    """The outbox row that publishes a job's chain once its transaction commits."""
    return OutboxMessage(topic=TOPIC_START, job_id=job_id, payload={"job_id": job_id})


def lock_job(session: Session, job_id: str) -> Job | None:
    return session.scalars(select(Job).where(Job.id == job_id).with_for_update()).one_or_none()


def get_step(session: Session, job_id: str, stage: Stage) -> JobStep:
    step = session.get(JobStep, (job_id, stage.value))
    if step is None:  # jobs created before a stage existed
        step = JobStep(job_id=job_id, stage=stage.value, attempts=0)
        session.add(step)
    return step


@dataclass(frozen=True)
class StageStart:
    attempts: int
    lost: int  # starts that never reported back: their worker died
    over_cap: bool


def begin_stage(
    session: Session,
    job: Job,
    stage: Stage,
    *,
    max_attempts: int,
    retries: int = 0,
    deadlines: Deadlines = DEFAULT_DEADLINES,
) -> StageStart:
    """Count one more attempt of `stage` and mark the job as running it; its heartbeats must now
    come within the running deadline.

    `retries` is how many deliberate retries (after transient errors) led to this start; every
    other start beyond the first was a redelivery after its worker died. Only those count against
    `max_attempts`, so a poison input is stopped while transient errors keep their own budget.
    """
    step = get_step(session, job.id, stage)
    step.attempts += 1
    step.state = "running"
    step.started_at = step.started_at or utcnow()
    step.error_code = step.error_message = None
    job.status = RUNNING_STATUS[stage].value
    job.stage = stage.value
    job.updated_at = utcnow()
    job.next_action_at = deadlines.running(job.updated_at)
    lost = step.attempts - 1 - retries
    return StageStart(attempts=step.attempts, lost=lost, over_cap=lost >= max_attempts)


@dataclass(frozen=True)
class Handoff:
    """The next stage of a job, to publish once the stage that precedes it has committed."""

    stage: Stage
    envelope: JobEnvelope
    batch: bool  # a batch item (published at batch priority)


def finish_stage(
    session: Session,
    job_id: str,
    stage: Stage,
    *,
    provider: str | None,
    model: str | None,
    handoff: Handoff | None = None,
    claim_s: float = 0.0,
    deadlines: Deadlines = DEFAULT_DEADLINES,
) -> int | None:
    """Mark `stage` succeeded and, in the same transaction, record the hand-off to the next stage
    as an outbox row; returns that row's id (None without a hand-off).

    The row is claimed for `claim_s` by the caller, which publishes it after the commit and marks
    it; if that publish fails (broker down) or the caller dies, the outbox sweep publishes it once
    the claim lapses, so a finished stage can never strand its job. Three statements, no reads,
    no row lock (the hot path of every stage). A step that already succeeded keeps its first
    timings, and the job its deadline and re-drive count (a skip is not progress); a step that
    succeeds now resets the count and gives the next stage the queued deadline.
    """
    now = utcnow()
    # Core statements on the tables: the ORM's unit of work would also reconcile the session's
    # identity map, which costs more than the statements themselves on this hot path.
    steps, job_rows = cast(Table, JobStep.__table__), cast(Table, Job.__table__)
    step = steps.c
    marked = session.execute(
        update(steps)
        .where(step.job_id == job_id, step.stage == stage.value, step.state != "succeeded")
        .values(
            state="succeeded",
            finished_at=now,
            duration_ms=_elapsed_ms(step.started_at, now, session),
            provider=func.coalesce(provider, step.provider),
            model=func.coalesce(model, step.model),
            next_check_at=None,
        )
    )
    # Progress is a step that had not succeeded before. A skip of a finished step (a re-drive
    # cascading through done stages) is not: it keeps the reaper's count and its longer wait.
    if getattr(marked, "rowcount", 0):
        deadline = deadlines.queued(now) if handoff else job_rows.c.next_action_at
        session.execute(
            update(job_rows)
            .where(job_rows.c.id == job_id)
            .values(updated_at=now, next_action_at=deadline, redrives=0)
        )
    if handoff is None:
        return None
    outbox = cast(Table, OutboxMessage.__table__)
    payload = {
        "stage": handoff.stage.value,
        "envelope": handoff.envelope.model_dump(mode="json"),
        "batch": handoff.batch,
    }
    row = insert(outbox).values(
        topic=TOPIC_STAGE,
        job_id=job_id,
        payload=payload,
        created_at=now,
        attempts=0,
        claimed_until=now + timedelta(seconds=claim_s),
    )
    return int(session.execute(row.returning(outbox.c.id)).scalar_one())


def extend_deadline(session: Session, running: list[tuple[str, str]], until: datetime) -> None:
    """A heartbeat: each (job, stage) still running is alive until `until`. A stage that finished
    or parked meanwhile is left alone (its job already has the deadline of its next action)."""
    if not running:
        return
    steps = JobStep.__table__
    still_running = (
        select(steps.c.job_id)
        .where(
            tuple_(steps.c.job_id, steps.c.stage).in_(running),
            steps.c.state == "running",
        )
        .scalar_subquery()
    )
    session.execute(
        update(Job)
        .where(Job.id.in_(still_running), Job.status.in_(UNFINISHED))
        .values(next_action_at=until)
        .execution_options(synchronize_session=False)
    )


def _elapsed_ms(started: Any, now: datetime, session: Session) -> Any:
    """Milliseconds from `started` to `now`, computed by the database (no read round trip)."""
    return func.floor(func.extract("epoch", literal(now) - started) * 1000)


def fail_job(
    session: Session,
    job: Job,
    stage: Stage | None,
    *,
    code: str,
    message: str,
    settings: Settings,
) -> bool:
    """Move a job to `failed`; False (and no change) when it is already terminal.

    `settings` shape its webhook deliveries (retry schedule, link base URL).
    """
    if JobStatus(job.status).terminal:
        return False
    now = utcnow()
    if stage is not None:
        step = get_step(session, job.id, stage)
        step.state, step.error_code, step.error_message = "failed", code, message
        step.finished_at = now
    job.status, job.error_stage = JobStatus.FAILED.value, stage.value if stage else None
    job.error_code, job.error_message = code, message
    job.updated_at = job.completed_at = now
    job.next_action_at = None
    # Counted when decided: a rollback after this (rare) over-counts, a missed count would hide one.
    JOB_FAILURES.labels(stage.value if stage else "none", code).inc()
    # Webhook deliveries, in the same transaction as the final state.
    deliveries.enqueue_job_event(session, job, TOPIC_FAILED, settings=settings)
    if job.batch_id:
        batches.count_finished(session, job.batch_id, JobStatus.FAILED, code, settings=settings)
    return True


def complete_job(
    session: Session,
    job: Job,
    *,
    schema_version: str,
    body: dict[str, Any],
    settings: Settings,
    cost_usd: float = 0.0,
    saved_usd: float = 0.0,
) -> bool:
    """Store the result and move the job to `completed`, once: a duplicate delivery changes nothing.

    A batch item's cost and Batch API saving (its result's provenance) go to the batch's totals.
    """
    if JobStatus(job.status).terminal:
        return False
    if session.get(JobResult, job.id) is None:
        session.add(JobResult(job_id=job.id, schema_version=schema_version, body=body))
    now = utcnow()
    job.status, job.stage = JobStatus.COMPLETED.value, None
    job.updated_at = job.completed_at = now
    job.next_action_at = None
    deliveries.enqueue_job_event(session, job, TOPIC_COMPLETED, settings=settings)
    if job.batch_id:
        batches.count_finished(
            session,
            job.batch_id,
            JobStatus.COMPLETED,
            settings=settings,
            cost_usd=cost_usd,
            saved_usd=saved_usd,
        )
    return True


def steps_of(session: Session, job_id: str) -> list[JobStep]:
    """A job's steps in pipeline order."""
    return steps_by_job(session, [job_id])[job_id]


def steps_by_job(session: Session, job_ids: list[str]) -> dict[str, list[JobStep]]:
    """Steps of many jobs, each list in pipeline order, in one query (a list page is one query)."""
    order = {s.value: i for i, s in enumerate(STAGES)}
    grouped: dict[str, list[JobStep]] = {job_id: [] for job_id in job_ids}
    if job_ids:
        for step in session.scalars(select(JobStep).where(JobStep.job_id.in_(job_ids))):
            grouped[step.job_id].append(step)
    return {j: sorted(steps, key=lambda s: order.get(s.stage, 99)) for j, steps in grouped.items()}
