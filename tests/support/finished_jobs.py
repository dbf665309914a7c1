"""Finished jobs with real blobs, written through the repository (no worker): for deletion tests."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from pipeline import artifacts
from pipeline.db import jobs
from pipeline.db.models import utcnow
from pipeline.db.session import transaction
from pipeline.ids import new_id
from pipeline.ports import BlobStore
from pipeline.settings import Settings
from schemas.common import InputKind, Stage
from schemas.envelope import JobEnvelope, JobInput

SETTINGS = Settings()  # only the webhook schedule and link base are read
STAGES_WRITTEN = (Stage.TRANSCRIBE, Stage.ANALYZE)


def stored_job(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    tenant_id: str,
    *,
    input_key: str | None = None,
) -> str:
    """A queued audio job whose input and two stage artifacts are in `blobs`; returns its id."""
    job_id = new_id("job")
    key = input_key or artifacts.input_key(tenant_id, job_id, "wav")
    blobs.put_bytes(key, b"RIFF....WAVE", content_type="audio/wav")
    envelope = JobEnvelope(
        job_id=job_id,
        tenant_id=tenant_id,
        input=JobInput(
            kind=InputKind.AUDIO, blob_key=key, sha256="0" * 64, content_type="audio/wav", bytes=12
        ),
    )
    for stage in STAGES_WRITTEN:
        blobs.put_bytes(artifacts.artifact_key(envelope, stage), b"{}", content_type="x/json")
    with transaction(sessions) as session:
        jobs.create_job(session, envelope, external_id=None, call_type=None, metadata={})
    return job_id


def finish(sessions: sessionmaker[Session], job_id: str, *, days_ago: float = 0) -> None:
    """Complete the job with a small result, as if it finished `days_ago` days ago."""
    with transaction(sessions) as session:
        job = jobs.lock_job(session, job_id)
        assert job is not None
        body = {"summary": "done"}
        jobs.complete_job(session, job, schema_version="1", body=body, settings=SETTINGS)
        job.completed_at = utcnow() - timedelta(days=days_ago)
