"""A batch row → its public status document (`BatchView`), read from its counters."""

from __future__ import annotations

from datetime import datetime

from flask import url_for

from pipeline.db import batches
from pipeline.db.batch_models import Batch
from pipeline.db.models import utcnow
from schemas.batches import BatchCounts, BatchFailure, BatchStatus, BatchView

STATUSES = ("open", "closed", "cancelled", "completed")


def batch_view(batch: Batch, *, now: datetime | None = None) -> BatchView:
    counts = batches.counts(batch)
    done = batch.finished_items
    rate, eta = _rate(batch, now or utcnow())
    return BatchView(
        id=batch.id,
        name=batch.name,
        status=_status(batch.status),
        call_type=batch.call_type,
        metadata=batch.meta,
        source=batch.source,
        counts=BatchCounts(**counts),
        progress=round(done / batch.total, 4) if batch.total else 0.0,
        created_at=batch.created_at,
        closed_at=batch.closed_at,
        started_at=batch.started_at,
        finished_at=batch.finished_at,
        items_per_s=rate,
        eta_s=eta,
        failures=[
            BatchFailure(code=c, count=int(n))
            for c, n in sorted(batch.failure_codes.items(), key=lambda kv: -int(kv[1]))
        ],
        cost_usd=round(batch.cost_usd or 0.0, 6),
        saved_usd=round(batch.saved_usd or 0.0, 6),
        links={
            "self": url_for("batches.get_batch", batch_id=batch.id),
            "results": url_for("batches.get_results", batch_id=batch.id),
            "jobs": url_for("jobs.list_jobs", batch_id=batch.id),
        },
    )


def _rate(batch: Batch, now: datetime) -> tuple[float | None, float | None]:
    """Items finished per second since the first release, and the time the rest would take."""
    done = batch.completed + batch.failed
    if batch.started_at is None or done == 0:
        return None, None
    elapsed = ((batch.finished_at or now) - batch.started_at).total_seconds()
    rate = done / max(elapsed, 1e-3)
    remaining = batch.backlog + batch.running
    return round(rate, 3), (round(remaining / rate, 1) if batch.finished_at is None else 0.0)


def _status(value: str) -> BatchStatus:
    if value not in STATUSES:
        raise ValueError(value)
    return value  # type: ignore[return-value]
