"""The `audit_events` table: one row per job deletion or retention purge, kept after the job is gone.

A row says who removed what and when, in counts (`removed`), never content: it outlives the data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.db.models import Base, utcnow

# Actions. `job.deleted`: DELETE /v1/jobs/{id}. `job.input_purged`: retention removed the audio,
# transcript and artifacts, the result stays. `job.purged`: retention removed the result and the row.
JOB_DELETED, INPUT_PURGED, JOB_PURGED = "job.deleted", "job.input_purged", "job.purged"
RETENTION_ACTOR = "retention"


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_tenant_at", "tenant_id", "at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # aud_…, time-ordered
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(String(40))  # no foreign key: the job may be gone
    actor: Mapped[str] = mapped_column(String(60))  # an API key id, or "retention"
    action: Mapped[str] = mapped_column(String(40))
    removed: Mapped[dict[str, Any]]  # counts by kind: {"blobs": 4, "results": 1, …}
    at: Mapped[datetime] = mapped_column(default=utcnow)
