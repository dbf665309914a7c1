"""A queued job written straight through the repository (no API, no blob): for repository tests."""

from __future__ import annotations

from sqlalchemy.orm import Session

from pipeline.db import jobs
from pipeline.db.models import Job
from pipeline.db.tenants import create_tenant
from pipeline.ids import new_id
from schemas.common import InputKind
from schemas.envelope import JobEnvelope, JobInput

_CONTENT_TYPES = {InputKind.AUDIO: "audio/wav", InputKind.TRANSCRIPT: "application/json"}


def queued_job(
    session: Session, *, tenant_id: str | None = None, kind: InputKind = InputKind.TRANSCRIPT
) -> Job:
    """A job with its steps and outbox row, for `tenant_id` (a new tenant when None)."""
    envelope = JobEnvelope(
        job_id=new_id("job"),
        tenant_id=tenant_id or create_tenant(session, name="t").id,
        input=JobInput(
            kind=kind, blob_key="k", sha256="0" * 64, content_type=_CONTENT_TYPES[kind], bytes=1
        ),
    )
    return jobs.create_job(session, envelope, external_id=None, call_type=None, metadata={})
