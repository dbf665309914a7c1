"""Duplicate content: find a tenant's earlier job for the same input or the same external id."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db.models import Job, Tenant
from schemas.common import JobStatus

_RETRYABLE = (JobStatus.FAILED.value, JobStatus.CANCELLED.value)


def find_duplicate(
    session: Session,
    tenant_id: str,
    *,
    input_sha256: str | None = None,
    external_id: str | None = None,
) -> Job | None:
    """The tenant's newest job, not failed, with this input hash or external id (None: no match).

    Locks the tenant's row first, inside the caller's transaction, so two concurrent submissions of
    the same content are serialised: the second sees the first's job once that one has committed.
    Failed or cancelled jobs never match: resubmitting one is a genuine retry.
    """
    if input_sha256 is None and external_id is None:
        return None
    session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())
    query = select(Job).where(Job.tenant_id == tenant_id, Job.status.not_in(_RETRYABLE))
    if input_sha256 is not None:
        query = query.where(Job.input_sha256 == input_sha256)
    if external_id is not None:
        query = query.where(Job.external_id == external_id)
    return session.scalars(query.order_by(Job.created_at.desc()).limit(1)).first()
