"""Typed SQLAlchemy models: tenants, API keys, jobs, job steps, results and the outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC everywhere: a naive datetime is refused on the way in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the current TenantConfig body
    config_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # 0005
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """Only a SHA-256 of the key and a display prefix are stored: a dump reveals no usable key."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # set by a rotation: the old key works until then (0005)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_jobs_tenant_external", "tenant_id", "external_id"),
        Index("ix_jobs_tenant_input_sha256", "tenant_id", "input_sha256"),  # 0002_idempotency
        Index("ix_jobs_status_updated", "status", "updated_at"),
        # 0007_batches: a batch's items in order (results, retries) and its idempotency keys; the
        # backlog the scheduler releases from, oldest first per tenant.
        Index("ix_jobs_batch", "batch_id", "id"),
        Index("ix_jobs_batch_item_key", "batch_id", "item_key", unique=True),
        Index("ix_jobs_backlog", "tenant_id", "released_at", "created_at"),
        # 0008_recovery: the reaper reads overdue unfinished jobs only.
        Index(
            "ix_jobs_next_action",
            "next_action_at",
            postgresql_where=text("next_action_at IS NOT NULL"),
        ),
        # 0009_retention: a tenant's finished jobs, oldest first, for the retention purge.
        Index("ix_jobs_tenant_completed", "tenant_id", "completed_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str | None] = mapped_column(String(20))
    input_kind: Mapped[str] = mapped_column(String(20))
    input_sha256: Mapped[str | None] = mapped_column(String(64))  # duplicate detection
    envelope: Mapped[dict[str, Any]]  # the JobEnvelope the pipeline starts from
    external_id: Mapped[str | None] = mapped_column(String(200))
    call_type: Mapped[str | None] = mapped_column(String(100))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    error_stage: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(60))
    error_message: Mapped[str | None] = mapped_column(Text)
    redrives: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    callback_url: Mapped[str | None] = mapped_column(String(2048))  # migration 0002_webhooks
    # 0007_batches: a batch item waits in the backlog (released_at NULL) until the scheduler
    # releases it; a one-off job is released when it is created. `item_key` is the item's
    # idempotency key within its batch (a file's content hash, an object's key and ETag).
    batch_id: Mapped[str | None] = mapped_column(String(40))
    item_key: Mapped[str | None] = mapped_column(String(200))
    released_at: Mapped[datetime | None]
    # 0008_recovery: when the job's next step must have happened (a published stage started, a
    # running stage's heartbeat, a retry or provider check due); past it the reaper re-drives the
    # job. NULL while the job waits in a batch backlog and once it is terminal (docs/recovery.md).
    next_action_at: Mapped[datetime | None]
    # 0009_retention: when retention removed the audio, transcript and artifacts (the result stays).
    input_purged_at: Mapped[datetime | None]


class JobStep(Base):
    __tablename__ = "job_steps"
    __table_args__ = (
        Index("ix_job_steps_next_check", "next_check_at"),  # 0004_provider_checks
        Index("ix_job_steps_provider_ref", "provider_ref"),
        Index("ix_job_steps_state", "state"),  # 0007_batches: the scheduler reads retrying steps
    )

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(20), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None]
    provider: Mapped[str | None] = mapped_column(String(60))
    model: Mapped[str | None] = mapped_column(String(120))
    error_code: Mapped[str | None] = mapped_column(String(60))
    error_message: Mapped[str | None] = mapped_column(Text)
    provider_ref: Mapped[str | None] = mapped_column(String(120))  # the provider's job id
    provider_submitted_at: Mapped[datetime | None]
    next_check_at: Mapped[datetime | None]  # a database-scheduled re-check of a provider job


class JobResult(Base):
    __tablename__ = "job_results"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    schema_version: Mapped[str] = mapped_column(String(20))
    body: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """Work to publish to the broker, written in the same transaction as the state it follows from."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(60))
    job_id: Mapped[str | None] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # 0008_recovery: a publisher holds the row until then; past it the sweep may publish it.
    claimed_until: Mapped[datetime | None]
