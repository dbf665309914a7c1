"""Batches: creation, counters kept in step with their jobs, close, cancel and retry of failures.

Every function works inside the caller's transaction. Counters change in the same transaction as
the jobs they count, under the batch row's lock where a read decides (the last item finishing
completes the batch and enqueues `batch.completed` exactly once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, select, tuple_, update
from sqlalchemy.orm import Session

from pipeline.db.batch_models import CANCELLED, CLOSED, COMPLETED, OPEN, Batch
from pipeline.db.models import Job, JobStep, OutboxMessage, utcnow
from pipeline.errors import PermanentError
from pipeline.ids import new_id
from pipeline.settings import Settings
from pipeline.webhooks import deliveries, events
from schemas.common import JobStatus


class BatchStateError(PermanentError):
    """The batch cannot do that in its state (e.g. add items to a closed batch)."""

    code = "batch_not_open"


def create_batch(
    session: Session,
    tenant_id: str,
    *,
    name: str,
    call_type: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    channel_map: Mapping[int, str] | None = None,
    callback_url: str | None = None,
    source: Mapping[str, Any] | None = None,
) -> Batch:
    now = utcnow()
    batch = Batch(
        id=new_id("bat"),
        tenant_id=tenant_id,
        name=name,
        status=OPEN,
        call_type=call_type,
        meta=dict(metadata or {}),
        channel_map={str(k): str(v) for k, v in channel_map.items()} if channel_map else None,
        callback_url=callback_url,
        source=dict(source) if source else None,
        import_state={"token": None, "done": False, "listed": 0} if source else None,
        total=0,
        backlog=0,
        completed=0,
        failed=0,
        cancelled=0,
        cost_usd=0.0,
        saved_usd=0.0,
        failure_codes={},
        created_at=now,
        updated_at=now,
    )
    session.add(batch)
    session.flush()
    return batch


TOPIC_IMPORT = "batch.import"


def request_import(session: Session, batch: Batch) -> OutboxMessage:
    """Ask for the batch's server-side import to run (again): an outbox row the relay publishes."""
    row = OutboxMessage(topic=TOPIC_IMPORT, job_id=None, payload={"batch_id": batch.id})
    session.add(row)
    session.flush()
    return row


def owned(session: Session, tenant_id: str, batch_id: str, *, lock: bool = False) -> Batch | None:
    """The tenant's batch, or None (another tenant's batch does not exist for this one)."""
    query = select(Batch).where(Batch.id == batch_id, Batch.tenant_id == tenant_id)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def count_accepted(session: Session, batch: Batch, *, accepted: int) -> None:
    """`accepted` new items joined the backlog (counted in SQL: concurrent adders never collide)."""
    session.execute(
        update(Batch)
        .where(Batch.id == batch.id)
        .values(total=Batch.total + accepted, backlog=Batch.backlog + accepted, updated_at=utcnow())
    )


def refuse_item(
    session: Session, batch: Batch, *, key: str, external_id: str, code: str, message: str
) -> None:
    """An item refused before any work (an object that is not audio): a failed job of its own,
    listed in the batch's failures and results, and kept under its key so a redo skips it."""
    now = utcnow()
    session.add(
        Job(
            id=new_id("job"),
            tenant_id=batch.tenant_id,
            status=JobStatus.FAILED.value,
            input_kind="audio",
            envelope={},
            external_id=external_id,
            meta=dict(batch.meta),
            batch_id=batch.id,
            item_key=key,
            error_code=code,
            error_message=message,
            created_at=now,
            updated_at=now,
            completed_at=now,
            released_at=now,
        )
    )
    batch.total += 1
    _count_failure(batch, code)


def count_finished(
    session: Session,
    batch_id: str,
    status: JobStatus,
    code: str | None = None,
    *,
    settings: Settings,
    cost_usd: float = 0.0,
    saved_usd: float = 0.0,
) -> None:
    """One released item reached `status` (completed or failed) in this transaction; a completed
    one adds its analysis cost and what the Batch API saved to the batch's totals."""
    batch = session.get(Batch, batch_id, with_for_update=True)
    if batch is None:
        return
    if status is JobStatus.COMPLETED:
        batch.completed += 1
        batch.cost_usd = (batch.cost_usd or 0.0) + cost_usd
        batch.saved_usd = (batch.saved_usd or 0.0) + saved_usd
    else:
        _count_failure(batch, code or "internal_error")
    finish_if_done(session, batch, settings=settings)


def _count_failure(batch: Batch, code: str) -> None:
    batch.failed += 1
    batch.failure_codes = {**batch.failure_codes, code: int(batch.failure_codes.get(code, 0)) + 1}
    batch.updated_at = utcnow()


def close(session: Session, batch: Batch, *, settings: Settings) -> None:
    """No more items: the batch completes when the ones it has are done. Closing twice is a no-op."""
    if batch.status == OPEN:
        batch.status, batch.closed_at = CLOSED, utcnow()
        finish_if_done(session, batch, settings=settings)
    elif batch.status == CANCELLED:
        raise BatchStateError("the batch was cancelled")


def cancel(session: Session, batch: Batch, *, settings: Settings) -> int:
    """Cancel the items still in the backlog (released ones finish); returns how many."""
    if batch.status in (COMPLETED, CANCELLED):
        return 0
    now = utcnow()
    # Items the scheduler is releasing right now are locked: skipped here, they run and finish.
    locked = _backlog_of(batch.id).with_for_update(skip_locked=True)
    waiting: list[str] = list(session.scalars(locked))
    for chunk in _chunks(waiting, 1000):
        session.execute(
            update(Job)
            .where(Job.id.in_(chunk))
            .values(
                status=JobStatus.CANCELLED.value, released_at=now, updated_at=now, completed_at=now
            )
            .execution_options(synchronize_session=False)
        )
    n = len(waiting)
    batch.cancelled += n
    batch.backlog -= n
    batch.status, batch.closed_at = CANCELLED, batch.closed_at or now
    finish_if_done(session, batch, settings=settings)
    return n


def retry_failed(session: Session, batch: Batch, *, settings: Settings) -> int:
    """Put the batch's failed items back in its backlog; they resume from their failed stage.

    Artifacts of stages that succeeded are kept, so a retry pays only for what failed. Provider
    jobs of the stages that did not succeed are forgotten: an expired Gemini batch or an errored
    transcript is submitted anew, not checked again.
    """
    if batch.status == CANCELLED:
        raise BatchStateError("the batch was cancelled")
    failed = select(Job.id).where(Job.batch_id == batch.id, Job.status == JobStatus.FAILED.value)
    ids = list(session.scalars(failed.with_for_update()))
    if not ids:
        return 0
    now = utcnow()
    for chunk in _chunks(ids, 1000):
        _requeue(session, chunk, now=now)
    batch.failed -= len(ids)
    batch.backlog += len(ids)
    batch.failure_codes = {}
    if batch.status == COMPLETED:
        batch.status, batch.finished_at = CLOSED, None
    batch.updated_at = now
    return len(ids)


def _requeue(session: Session, ids: list[str], *, now: Any) -> None:
    # Back in the backlog: the scheduler owns these items again, not the reaper (no deadline).
    again = {"status": JobStatus.QUEUED.value, "stage": None, "released_at": None, "redrives": 0}
    again |= {"next_action_at": None}
    cleared = {"error_stage": None, "error_code": None, "error_message": None}
    session.execute(
        update(Job)
        .where(Job.id.in_(ids))
        .values(**again, **cleared, completed_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(JobStep)
        .where(JobStep.job_id.in_(ids), JobStep.state != "succeeded")
        .values(
            state="pending",
            attempts=0,
            error_code=None,
            error_message=None,
            provider_ref=None,
            provider_submitted_at=None,
            next_check_at=None,
        )
        .execution_options(synchronize_session=False)
    )


def _chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def finish_if_done(session: Session, batch: Batch, *, settings: Settings) -> bool:
    """Complete a closed (or cancelled) batch whose items are all done, announcing it once."""
    if batch.finished_at is not None or batch.status not in (CLOSED, CANCELLED):
        return False
    if batch.finished_items < batch.total or not _import_done(batch):
        return False
    batch.finished_at = batch.updated_at = utcnow()
    if batch.status == CLOSED:
        batch.status = COMPLETED
    event = events.batch_event(batch_summary(batch), base_url=settings.public_base_url)
    deliveries.enqueue_event(
        session, batch.tenant_id, event, settings=settings, callback_url=batch.callback_url
    )
    return True


def _import_done(batch: Batch) -> bool:
    return batch.import_state is None or bool(batch.import_state.get("done"))


def batch_summary(batch: Batch) -> dict[str, Any]:
    """The counts a webhook and a status document share."""
    return {
        "batch_id": batch.id,
        "name": batch.name,
        "status": batch.status,
        "counts": counts(batch),
    }


def counts(batch: Batch) -> dict[str, int]:
    return {
        "total": batch.total,
        "backlog": batch.backlog,
        "running": batch.running,
        "completed": batch.completed,
        "failed": batch.failed,
        "cancelled": batch.cancelled,
    }


def _backlog_of(batch_id: str) -> Select[Any]:
    return select(Job.id).where(
        Job.batch_id == batch_id,
        Job.released_at.is_(None),
        Job.status == JobStatus.QUEUED.value,
    )


def list_batches(
    session: Session,
    tenant_id: str,
    *,
    limit: int,
    name: str | None = None,
    status: str | None = None,
    before: tuple[Any, str] | None = None,
) -> list[Batch]:
    """The tenant's batches, newest first (keyset `before` = (created_at, id) of the last seen)."""
    query = select(Batch).where(Batch.tenant_id == tenant_id)
    if name is not None:
        query = query.where(Batch.name == name)
    if status is not None:
        query = query.where(Batch.status == status)
    if before is not None:
        query = query.where(tuple_(Batch.created_at, Batch.id) < tuple_(*before))
    return list(
        session.scalars(query.order_by(Batch.created_at.desc(), Batch.id.desc()).limit(limit))
    )
