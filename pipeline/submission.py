"""Job submission: the one way a job comes to exist, whoever submits it.

The API (`POST /v1/jobs`, batch items), the server-side importer, benches and tests all create jobs
here: options are resolved from the request, the batch and the tenant's typed configuration;
providers and the configuration version are pinned; the job, its steps and what starts it are
written in the caller's transaction. A one-off job is released at once (an outbox row); a batch
item waits in the backlog until the scheduler releases it (pipeline/db/backlog.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from pipeline.db import batches, jobs
from pipeline.db.batch_models import Batch
from pipeline.db.dedupe import find_duplicate
from pipeline.db.models import Job, JobStep, utcnow
from pipeline.db.tenant_config import parse_config
from pipeline.settings import Settings
from schemas.api import JobOptionsIn
from schemas.common import STAGES, InputKind, JobStatus, Role
from schemas.envelope import JobEnvelope, JobInput, JobOptions
from schemas.tenant import TenantConfig


@dataclass(frozen=True)
class Submitter:
    """The tenant a submission is for, with its configuration as it was read (typed)."""

    tenant_id: str
    config: TenantConfig
    config_version: int

    @classmethod
    def of(cls, tenant_id: str, body: Mapping[str, Any] | None, version: int) -> Submitter:
        """Raises PermanentError `tenant_config_invalid` for a stored body that no longer parses."""
        return cls(tenant_id, parse_config(dict(body or {})), version)


@dataclass(frozen=True)
class Item:
    """One job to create: its stored input and what the request said about it."""

    job_id: str
    stored: JobInput
    options: JobOptionsIn = field(default_factory=JobOptionsIn)
    item_key: str | None = None  # idempotency key within a batch


class DuplicateJob(Exception):
    """The tenant dedupes (config `dedupe`) and the job already exists as `job_id`."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


def submit(
    session: Session,
    settings: Settings,
    submitter: Submitter,
    item: Item,
    *,
    batch: Batch | None = None,
) -> Job:
    """Create one job in the caller's transaction; raises DuplicateJob (tenant option `dedupe`).

    Without a batch the job is released at once; with one it joins the batch's backlog.
    """
    _check_duplicate(session, submitter, item)
    envelope = envelope_for(settings, submitter, item, batch=batch)
    job = jobs.create_job(
        session,
        envelope,
        external_id=item.options.external_id,
        call_type=envelope.options.call_type,
        metadata=_metadata(item.options, batch),
        callback_url=item.options.callback_url,
        batch_id=batch.id if batch else None,
        item_key=item.item_key,
        deadlines=settings.deadlines,
    )
    if batch is not None:
        batches.count_accepted(session, batch, accepted=1)
    return job


@dataclass(frozen=True)
class Accepted:
    job_id: str
    duplicate: bool


def submit_items(
    session: Session,
    settings: Settings,
    submitter: Submitter,
    batch: Batch,
    items: Sequence[Item],
) -> list[Accepted]:
    """Add many items to `batch` with a few multi-row INSERTs (the bulk intake path).

    An item whose `item_key` the batch already holds is not created again: its existing job is
    returned as a duplicate, so a client or importer that retries never submits anything twice.
    Tenant dedupe (config `dedupe`) is for one-off submissions; within a batch, keys decide.
    """
    known = known_keys(session, batch.id, [i.item_key for i in items if i.item_key])
    fresh: list[Item] = []
    for item in items:
        if item.item_key is not None and item.item_key not in known:
            known[item.item_key] = item.job_id
            fresh.append(item)
        elif item.item_key is None:
            fresh.append(item)
    now = utcnow()
    if fresh:
        session.execute(insert(Job), [_job_row(settings, submitter, i, batch, now) for i in fresh])
        steps = [
            {"job_id": i.job_id, "stage": s.value, "attempts": 0} for i in fresh for s in STAGES
        ]
        session.execute(insert(JobStep), steps)
        batches.count_accepted(session, batch, accepted=len(fresh))
    created = {i.job_id for i in fresh}
    return [
        Accepted(
            known.get(i.item_key, i.job_id) if i.item_key else i.job_id, i.job_id not in created
        )
        for i in items
    ]


def envelope_for(
    settings: Settings, submitter: Submitter, item: Item, *, batch: Batch | None = None
) -> JobEnvelope:
    options = resolve_options(settings, submitter, item.options, kind=item.stored.kind, batch=batch)
    return JobEnvelope(
        job_id=item.job_id, tenant_id=submitter.tenant_id, input=item.stored, options=options
    )


def resolve_options(
    settings: Settings,
    submitter: Submitter,
    given: JobOptionsIn,
    *,
    kind: InputKind,
    batch: Batch | None = None,
) -> JobOptions:
    """The job's options: what the request says, else its batch's, else the tenant's, else ours.

    Providers are pinned here (the tenant's choice, else the deployment's), so every stage of the
    job, and any re-drive of it, uses the same ones and the chain can route by them. A batch item
    of a tenant with `batches.gemini_batch` on Gemini is analyzed through Gemini's Batch API.
    """
    config = submitter.config
    defaults = config.defaults
    batch_map = _channel_map(batch.channel_map) if batch and batch.channel_map else None
    transcriber = config.providers.transcriber or settings.transcriber
    analyzer = config.providers.analyzer or settings.analyzer
    economy = batch is not None and config.batches.gemini_batch and analyzer == "gemini"
    return JobOptions(
        language=given.language or defaults.language,
        channel_map=given.channel_map or batch_map or defaults.channel_map or _DEFAULT_MAP,
        call_type=given.call_type or (batch.call_type if batch else None) or defaults.call_type,
        transcriber=transcriber if kind is InputKind.AUDIO else None,
        analyzer=analyzer,
        config_version=submitter.config_version,
        analysis_mode="batch" if economy else None,
    )


_DEFAULT_MAP = JobOptions().channel_map


def _channel_map(stored: dict[str, Any]) -> dict[int, Role]:
    return {int(channel): Role(role) for channel, role in stored.items()}


def _metadata(options: JobOptionsIn, batch: Batch | None) -> dict[str, Any]:
    metadata = {**(batch.meta if batch else {}), **options.metadata}
    if options.agent_id:
        metadata.setdefault("agent_id", options.agent_id)
    return metadata


def _check_duplicate(session: Session, submitter: Submitter, item: Item) -> None:
    mode = submitter.config.dedupe
    existing = None
    if mode == "sha256":
        existing = find_duplicate(session, submitter.tenant_id, input_sha256=item.stored.sha256)
    elif mode == "external_id" and item.options.external_id:
        existing = find_duplicate(
            session, submitter.tenant_id, external_id=item.options.external_id
        )
    if existing is not None:
        raise DuplicateJob(existing.id)


def known_keys(session: Session, batch_id: str, keys: list[str]) -> dict[str, str]:
    """Which of `keys` the batch already holds: item key → its job id."""
    if not keys:
        return {}
    rows = session.execute(
        select(Job.item_key, Job.id).where(Job.batch_id == batch_id, Job.item_key.in_(keys))
    )
    return {str(key): job_id for key, job_id in rows}


def _job_row(
    settings: Settings, submitter: Submitter, item: Item, batch: Batch, now: Any
) -> dict[str, Any]:
    envelope = envelope_for(settings, submitter, item, batch=batch)
    return {
        "id": item.job_id,
        "tenant_id": submitter.tenant_id,
        "status": JobStatus.QUEUED.value,
        "input_kind": item.stored.kind.value,
        "input_sha256": item.stored.sha256,
        "envelope": envelope.model_dump(mode="json"),
        "external_id": item.options.external_id,
        "call_type": envelope.options.call_type,
        "meta": _metadata(item.options, batch),
        "batch_id": batch.id,
        "item_key": item.item_key,
        "redrives": 0,
        "created_at": now,
        "updated_at": now,
    }
