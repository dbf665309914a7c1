"""Rescore rows: created `waiting` in the caller's transaction (the scheduler in
pipeline/db/rescore_backlog.py releases them); read per tenant."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db.models import Job
from pipeline.db.rescore_models import WAITING, Rescore
from pipeline.ids import new_id
from schemas.common import JobStatus
from schemas.rescore import RescoreFilter


def create_rescore(
    session: Session, job: Job, *, reanalyze: bool, batch_id: str | None = None
) -> Rescore:
    """A waiting rescore of a completed job: nothing is published until it is released."""
    row = Rescore(
        id=new_id("rsc"),
        tenant_id=job.tenant_id,
        job_id=job.id,
        batch_id=batch_id,
        status=WAITING,
        reanalyze=reanalyze,
    )
    session.add(row)
    session.flush()  # defaults (created_at) are set, so the caller can present the row
    return row


def completed_jobs(
    session: Session, tenant_id: str, flt: RescoreFilter, *, limit: int
) -> Sequence[Job]:
    """The tenant's completed jobs matching `flt`, oldest first (a bulk rescore's selection)."""
    query = select(Job).where(
        Job.tenant_id == tenant_id,
        Job.status == JobStatus.COMPLETED.value,
        Job.input_purged_at.is_(None),  # retention took its artifacts: nothing to re-score from
    )
    if flt.job_ids is not None:
        query = query.where(Job.id.in_(flt.job_ids))
    if flt.call_type is not None:
        query = query.where(Job.call_type == flt.call_type)
    if flt.created_after is not None:
        query = query.where(Job.created_at >= flt.created_after)
    if flt.created_before is not None:
        query = query.where(Job.created_at < flt.created_before)
    return session.scalars(query.order_by(Job.created_at, Job.id).limit(limit)).all()


def get_rescore(session: Session, tenant_id: str, rescore_id: str) -> Rescore | None:
    row = session.get(Rescore, rescore_id)
    return row if row is not None and row.tenant_id == tenant_id else None


def list_rescores(
    session: Session, tenant_id: str, *, batch_id: str | None, job_id: str | None, limit: int
) -> Sequence[Rescore]:
    query = select(Rescore).where(Rescore.tenant_id == tenant_id)
    if batch_id is not None:
        query = query.where(Rescore.batch_id == batch_id)
    if job_id is not None:
        query = query.where(Rescore.job_id == job_id)
    return session.scalars(query.order_by(Rescore.created_at, Rescore.id).limit(limit)).all()
