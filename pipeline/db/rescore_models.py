"""The `rescores` table: one row per re-score of a completed job, with the old and new scores.

Statuses: `waiting` (in the database's backlog, not published; shown as `queued`), `queued`
(released: published to the broker), `running`, then `completed` or `failed` (docs/fairness.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.db.models import Base, utcnow

WAITING, RELEASED, RUNNING = "waiting", "queued", "running"
UNFINISHED = (WAITING, RELEASED, RUNNING)
TERMINAL = ("completed", "failed")


class Rescore(Base):
    __tablename__ = "rescores"
    __table_args__ = (
        Index("ix_rescores_tenant_created", "tenant_id", "created_at"),
        Index("ix_rescores_batch", "batch_id"),
        Index("ix_rescores_job", "job_id"),
        # The scheduler's reads: unfinished rescores per tenant, oldest first.
        Index(
            "ix_rescores_unfinished",
            "tenant_id",
            "status",
            "created_at",
            postgresql_where=text("status IN ('waiting', 'queued', 'running')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    batch_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default=WAITING)
    reanalyze: Mapped[bool] = mapped_column(Boolean, default=False)
    config_version: Mapped[int | None]
    old_score: Mapped[dict[str, Any] | None]
    new_score: Mapped[dict[str, Any] | None]
    changes: Mapped[dict[str, Any] | None]  # {"items": [...]}: what changed, per item
    error_code: Mapped[str | None] = mapped_column(String(60))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None]  # published to the broker (None while waiting)
    completed_at: Mapped[datetime | None]
