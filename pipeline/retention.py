"""Removing a finished job's data: on request (`delete_job`) and by per-tenant retention
(`purge_expired`, in bounded batches that skip rows other transactions hold).

What goes: the job's blobs (input audio or transcript, stage artifacts), and for a whole-job removal
its result, steps, re-scores, webhook deliveries not yet sent and the job row. Every removal writes
an audit event (counts, never content) in the same transaction. Functions take a Session inside the
caller's transaction and never commit; the caller holds the job's row lock.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline import artifacts
from pipeline.db import audit
from pipeline.db.audit_models import INPUT_PURGED, JOB_DELETED, JOB_PURGED, RETENTION_ACTOR
from pipeline.db.models import Base, Job, JobResult, JobStep, Tenant
from pipeline.db.rescore_models import UNFINISHED as RESCORE_RUNNING
from pipeline.db.rescore_models import Rescore
from pipeline.db.session import transaction
from pipeline.db.tenant_config import parse_config
from pipeline.db.webhook_models import OPEN_STATES, WebhookDelivery
from pipeline.errors import PermanentError
from pipeline.ports import BlobStore
from pipeline.settings import Settings
from schemas.common import JobStatus
from schemas.tenant import TenantConfig

log = logging.getLogger(__name__)

TERMINAL = tuple(s.value for s in JobStatus if s.terminal)


class JobInProgress(PermanentError):
    """The job (or a re-score of it) is still running: removing it now would race its workers."""

    code = "job_in_progress"


@dataclass(frozen=True)
class Removed:
    """What one removal took away, by kind (the audit event's `removed`)."""

    blobs: int = 0
    results: int = 0
    steps: int = 0
    rescores: int = 0
    webhook_deliveries: int = 0
    jobs: int = 0

    def counts(self) -> dict[str, int]:
        return asdict(self)


def delete_job(session: Session, blobs: BlobStore, job: Job, *, actor: str) -> Removed:
    """Remove a finished job and everything of it, and audit it as `job.deleted` by `actor`.

    Raises JobInProgress when the job is not terminal or a re-score of it is queued or running.
    Blob removal is idempotent: after a failure (TransientError) the whole call can be repeated.
    """
    if not JobStatus(job.status).terminal or _rescoring(session, job.id):
        raise JobInProgress("the job is still being processed", code="job_in_progress")
    removed = _remove_job(session, blobs, job)
    _audit(session, job, actor=actor, action=JOB_DELETED, removed=removed)
    return removed


def purge_input(session: Session, blobs: BlobStore, job: Job, *, now: datetime) -> Removed:
    """Retention: remove the job's audio, transcript and artifacts; the result and row stay, and
    `input_purged_at` says so."""
    removed = Removed(blobs=remove_blobs(session, blobs, job))
    job.input_purged_at = now
    _audit(session, job, actor=RETENTION_ACTOR, action=INPUT_PURGED, removed=removed)
    return removed


def purge_job(session: Session, blobs: BlobStore, job: Job) -> Removed:
    """Retention: remove the job entirely (blobs too, if still there), audited as `job.purged`."""
    removed = _remove_job(session, blobs, job)
    _audit(session, job, actor=RETENTION_ACTOR, action=JOB_PURGED, removed=removed)
    return removed


def _remove_job(session: Session, blobs: BlobStore, job: Job) -> Removed:
    stored = 0 if job.input_purged_at is not None else remove_blobs(session, blobs, job)
    removed = Removed(
        blobs=stored,
        results=_delete(session, JobResult, JobResult.job_id == job.id),
        steps=_delete(session, JobStep, JobStep.job_id == job.id),
        rescores=_delete(session, Rescore, Rescore.job_id == job.id),
        webhook_deliveries=_delete(
            session,
            WebhookDelivery,
            (WebhookDelivery.tenant_id == job.tenant_id)
            & (WebhookDelivery.job_id == job.id)
            & WebhookDelivery.state.in_(OPEN_STATES),
        ),
        jobs=_delete(session, Job, Job.id == job.id),
    )
    session.expunge(job)
    return removed


def remove_blobs(session: Session, blobs: BlobStore, job: Job) -> int:
    """Delete the job's folder, and its input when it lives elsewhere (a direct upload, an imported
    key) unless another job of the tenant still reads that same object. Returns how many went."""
    folder = artifacts.job_prefix(job.tenant_id, job.id)
    count = blobs.delete_prefix(folder)
    outside = {k for k in _blob_keys(job) if not k.startswith(folder + "/")}
    for key in sorted(outside):
        if blobs.exists(key) and not _shared(session, job, key):
            blobs.delete(key)
            count += 1
    return count


def _blob_keys(job: Job) -> list[str]:
    envelope = job.envelope or {}
    keys = [str(k) for k in (envelope.get("artifacts") or {}).values()]
    if key := (envelope.get("input") or {}).get("blob_key"):
        keys.append(str(key))
    return keys


def _shared(session: Session, job: Job, key: str) -> bool:
    """Whether another job of the tenant, its input not purged, has `key` as its input."""
    query = select(func.count()).where(
        Job.tenant_id == job.tenant_id,
        Job.id != job.id,
        Job.input_purged_at.is_(None),
        Job.envelope["input"]["blob_key"].as_string() == key,
    )
    return bool(session.scalar(query))


def _rescoring(session: Session, job_id: str) -> bool:
    query = select(Rescore.id).where(Rescore.job_id == job_id, Rescore.status.in_(RESCORE_RUNNING))
    return session.scalars(query.limit(1)).first() is not None


def _delete(session: Session, model: type[Base], condition: ColumnElement[bool]) -> int:
    statement = delete(model).where(condition).execution_options(synchronize_session=False)
    result = cast(CursorResult[Any], session.execute(statement))
    return result.rowcount


def _audit(session: Session, job: Job, *, actor: str, action: str, removed: Removed) -> None:
    audit.record(
        session,
        tenant_id=job.tenant_id,
        job_id=job.id,
        actor=actor,
        action=action,
        removed=removed.counts(),
    )


# --- retention ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """How long one tenant keeps its data, in days after a job finished (None: kept)."""

    tenant_id: str
    audio_days: int | None
    result_days: int | None


@dataclass
class PurgeReport:
    inputs: int = 0  # jobs whose audio, transcript and artifacts went
    jobs: int = 0  # jobs removed entirely
    batches: int = 0


def policies(session: Session, settings: Settings) -> list[Policy]:
    """Every tenant that keeps something for a limited time: its own days, else the deployment's."""
    found = []
    for tenant_id, body in session.execute(select(Tenant.id, Tenant.config).order_by(Tenant.id)):
        config = _config(tenant_id, body)
        audio = config.retention_days or settings.retention_audio_days
        result = config.result_retention_days or settings.retention_result_days
        if audio is not None or result is not None:
            found.append(Policy(tenant_id, audio, result))
    return found


def _config(tenant_id: str, body: dict[str, object] | None) -> TenantConfig:
    try:
        return parse_config(body)
    except PermanentError:
        log.warning(
            "invalid tenant configuration: deployment retention applies",
            extra={"tenant_id": tenant_id},
        )
        return TenantConfig()


def purge_expired(
    sessions: sessionmaker[Session], blobs: BlobStore, settings: Settings, *, now: datetime
) -> PurgeReport:
    """Purge what every tenant's policy says has expired at `now`, in batches of
    RETENTION_BATCH_SIZE jobs (one transaction each), at most RETENTION_MAX_BATCHES that purged
    something per call.

    Whole-job purges run first, so a job due for both is not purged twice. Idempotent: a job
    locked by another transaction is skipped and found again by the next run.
    """
    with sessions() as session:
        found = policies(session, settings)
    report, size = PurgeReport(), settings.retention_batch_size
    for policy in found:
        for whole, days in ((True, policy.result_days), (False, policy.audio_days)):
            if days is None:
                continue
            cutoff = now - timedelta(days=days)
            while report.batches < settings.retention_max_batches:
                n = purge_batch(
                    sessions, blobs, policy.tenant_id, cutoff, now=now, whole=whole, limit=size
                )
                report.batches += 1 if n else 0  # an empty look costs a query, not a batch
                if whole:
                    report.jobs += n
                else:
                    report.inputs += n
                if n < size:
                    break
    return report


def purge_batch(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    tenant_id: str,
    cutoff: datetime,
    *,
    now: datetime,
    whole: bool,
    limit: int,
) -> int:
    """One transaction: up to `limit` of the tenant's jobs finished before `cutoff`, oldest first,
    locked with SKIP LOCKED, purged whole (`whole`) or of their input. Returns how many."""
    query = select(Job).where(
        Job.tenant_id == tenant_id,
        Job.status.in_(TERMINAL),
        Job.completed_at < cutoff,
        Job.id.not_in(select(Rescore.job_id).where(Rescore.status.in_(RESCORE_RUNNING))),
    )
    if not whole:
        query = query.where(Job.input_purged_at.is_(None))
    locked = query.order_by(Job.completed_at).limit(limit).with_for_update(skip_locked=True)
    with transaction(sessions) as session:
        jobs = list(session.scalars(locked))
        for job in jobs:
            if whole:
                purge_job(session, blobs, job)
            else:
                purge_input(session, blobs, job, now=now)
    return len(jobs)
