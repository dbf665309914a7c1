"""The audit trail of deletions and purges: written in the transaction that removes, read newest first.

Every function takes a Session inside the caller's transaction; none commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from pipeline.db.audit_models import AuditEvent
from pipeline.db.models import utcnow
from pipeline.ids import new_id


def record(
    session: Session,
    *,
    tenant_id: str,
    job_id: str,
    actor: str,
    action: str,
    removed: dict[str, int],
) -> AuditEvent:
    """Add one event; `removed` holds counts by kind, never content."""
    event = AuditEvent(
        id=new_id("aud"),
        tenant_id=tenant_id,
        job_id=job_id,
        actor=actor,
        action=action,
        removed=removed,
        at=utcnow(),
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class PageQuery:
    """One page of a tenant's events: newest first, after the keyset `(at, id)` when given."""

    tenant_id: str
    limit: int
    after: tuple[datetime, str] | None = None
    job_id: str | None = None
    action: str | None = None


def page(session: Session, query: PageQuery) -> tuple[list[AuditEvent], bool]:
    """Up to `limit` events and whether more follow."""
    select_ = select(AuditEvent).where(AuditEvent.tenant_id == query.tenant_id)
    if query.job_id is not None:
        select_ = select_.where(AuditEvent.job_id == query.job_id)
    if query.action is not None:
        select_ = select_.where(AuditEvent.action == query.action)
    if query.after is not None:
        select_ = select_.where(tuple_(AuditEvent.at, AuditEvent.id) < tuple_(*query.after))
    ordered = select_.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(query.limit + 1)
    rows = list(session.scalars(ordered))
    return rows[: query.limit], len(rows) > query.limit
