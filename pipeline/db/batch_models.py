"""The `batches` table: a night's work as one object, with counters kept as its jobs move.

Counters are updated in the same transactions as the jobs they count (creation, release,
terminal state), so a batch's status is one row read however many items it holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.db.models import Base, utcnow

OPEN, CLOSED, CANCELLED, COMPLETED = "open", "closed", "cancelled", "completed"
# Batches whose items the scheduler may still release.
RELEASABLE = (OPEN, CLOSED)


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (
        Index("ix_batches_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_batches_tenant_name", "tenant_id", "name"),
        Index("ix_batches_backlog", "backlog"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=OPEN)
    call_type: Mapped[str | None] = mapped_column(String(100))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    channel_map: Mapped[dict[str, Any] | None]
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    source: Mapped[dict[str, Any] | None]  # {"storage_prefix": "s3://bucket/prefix/"}
    # A server-side import's progress: {"token": next ListObjectsV2 token, "done": bool, ...}.
    import_state: Mapped[dict[str, Any] | None]
    total: Mapped[int] = mapped_column(Integer, default=0)
    backlog: Mapped[int] = mapped_column(Integer, default=0)  # accepted, not yet released
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    failure_codes: Mapped[dict[str, Any]] = mapped_column(default=dict)  # error code → count
    # Completed items' analysis cost, and what Gemini's Batch API saved on it (Nightly economy).
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    saved_usd: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]  # first item released
    finished_at: Mapped[datetime | None]

    @property
    def finished_items(self) -> int:
        return self.completed + self.failed + self.cancelled

    @property
    def running(self) -> int:
        """Released and not yet finished."""
        return self.total - self.backlog - self.finished_items
