"""The rescore backlog: rescores wait in the database until released, fairly, up to the caps.

A created rescore is `waiting`: no message exists for it. Releasing one marks it `queued`
(`released_at`) and writes the outbox row that publishes it, in one transaction; the relay then
publishes. At most `rescore_tenant_max_in_flight` rescores of a tenant and
`rescore_max_in_flight` of all tenants are released and unfinished at once, so a bulk rescore of
500 calls never fills the broker ahead of anyone's one-off job (docs/fairness.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, text, update
from sqlalchemy.orm import Session

from pipeline.db.models import Job, OutboxMessage
from pipeline.db.rescore_models import RELEASED, RUNNING, WAITING, Rescore
from pipeline.scheduling import Demand, share
from pipeline.settings import Settings
from schemas.envelope import JobEnvelope

TOPIC_RESCORE = "rescore.start"
# Serialises releases (the beat tick and the API's immediate ones), so the caps count true.
_RELEASE_LOCK = 0x7265_7363  # "resc"


def release_due(session: Session, settings: Settings, *, now: datetime) -> list[str]:
    """Release what the caps allow now, fairly across tenants; returns the released job ids."""
    _serialise(session)
    demands = current_demand(session, settings, now=now)
    free = settings.rescore_max_in_flight - sum(d.in_flight for d in demands)
    released: list[str] = []
    for tenant_id, n in share(demands, free=free).items():
        released.extend(release(session, tenant_id, n, settings=settings, now=now))
    return released


def release_tenant(
    session: Session, settings: Settings, tenant_id: str, *, now: datetime
) -> list[str]:
    """Release the tenant's waiting rescores at once, as far as its cap and the global cap allow
    (a one-off rescore need not wait for the next tick); returns the released job ids."""
    _serialise(session)
    demands = {d.tenant_id: d for d in current_demand(session, settings, now=now)}
    mine = demands.get(tenant_id)
    if mine is None:
        return []
    free = settings.rescore_max_in_flight - sum(d.in_flight for d in demands.values())
    n = min(free, mine.waiting, mine.cap - mine.in_flight)
    return release(session, tenant_id, n, settings=settings, now=now) if n > 0 else []


def current_demand(session: Session, settings: Settings, *, now: datetime) -> list[Demand]:
    """Every tenant with unfinished rescores: how many wait and how many are in flight.

    A released rescore unfinished past `rescore_redrive_s` lost its message (a broker that lost
    it, a publish whose outbox row is gone): it counts as waiting again, and is released again.
    """
    waiting = _releasable(now - timedelta(seconds=settings.rescore_redrive_s))
    rows = session.execute(
        select(
            Rescore.tenant_id,
            func.count().filter(waiting),
            func.count().filter(~waiting),
        )
        .where(Rescore.status.in_((WAITING, RELEASED, RUNNING)))
        .group_by(Rescore.tenant_id)
    ).all()
    cap = settings.rescore_tenant_max_in_flight
    return [Demand(tenant_id=str(t), waiting=int(w), in_flight=int(f), cap=cap) for t, w, f in rows]


def release(
    session: Session, tenant_id: str, n: int, *, settings: Settings, now: datetime
) -> list[str]:
    """Release the tenant's `n` oldest waiting rescores (rows another transaction holds are
    skipped) and write the outbox row of each; returns their job ids."""
    stale = now - timedelta(seconds=settings.rescore_redrive_s)
    picked = session.execute(
        select(Rescore.id, Rescore.job_id, Rescore.reanalyze, Job.envelope)
        .join(Job, Job.id == Rescore.job_id)
        .where(Rescore.tenant_id == tenant_id, _releasable(stale))
        .order_by(Rescore.created_at, Rescore.id)
        .limit(n)
        .with_for_update(of=Rescore, skip_locked=True)
    ).all()
    if not picked:
        return []
    session.execute(
        update(Rescore)
        .where(Rescore.id.in_([str(row.id) for row in picked]))
        .values(status=RELEASED, released_at=now)
        .execution_options(synchronize_session=False)
    )
    session.add_all(
        start_message(
            row.id, row.job_id, analyzer=_analyzer(row.envelope) if row.reanalyze else None
        )
        for row in picked
    )
    return [str(row.job_id) for row in picked]


def start_message(rescore_id: str, job_id: str, *, analyzer: str | None) -> OutboxMessage:
    """The outbox row that publishes a released rescore (`analyzer`: where it reanalyzes)."""
    payload = {"rescore_id": rescore_id, "analyzer": analyzer}
    return OutboxMessage(topic=TOPIC_RESCORE, job_id=job_id, payload=payload)


def _releasable(stale: datetime) -> ColumnElement[bool]:
    """Waiting, or released so long ago without finishing that its message must be lost."""
    lost = and_(Rescore.status.in_((RELEASED, RUNNING)), Rescore.released_at < stale)
    return or_(Rescore.status == WAITING, lost)


def _analyzer(envelope: dict[str, object] | None) -> str | None:
    if envelope is None:
        return None
    return JobEnvelope.model_validate(envelope).options.analyzer_name


def _serialise(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _RELEASE_LOCK})
