"""Where a job's blobs live, and typed reading/writing of stage artifacts."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from pipeline.errors import PermanentError
from pipeline.ports import BlobStore
from schemas.common import Stage
from schemas.envelope import JobEnvelope

M = TypeVar("M", bound=BaseModel)


def job_prefix(tenant_id: str, job_id: str) -> str:
    return f"tenants/{tenant_id}/jobs/{job_id}"


def input_key(tenant_id: str, job_id: str, ext: str) -> str:
    return f"{job_prefix(tenant_id, job_id)}/input.{ext}"


def upload_key(tenant_id: str, upload_id: str) -> str:
    """A direct upload waiting to become a job's input; under its tenant, so no other reaches it."""
    return f"tenants/{tenant_id}/uploads/{upload_id}"


def artifact_key(envelope: JobEnvelope, stage: Stage) -> str:
    return f"{job_prefix(envelope.tenant_id, envelope.job_id)}/{stage.value}.json"


def save(blobs: BlobStore, key: str, artifact: BaseModel) -> None:
    data = artifact.model_dump_json().encode()
    blobs.put_bytes(key, data, content_type="application/json")


def load(blobs: BlobStore, envelope: JobEnvelope, stage: Stage, model: type[M]) -> M:
    """Read the artifact an earlier stage wrote (by the key it recorded, else the conventional one)."""
    key = envelope.artifacts.get(stage.value) or artifact_key(envelope, stage)
    try:
        return model.model_validate_json(blobs.get_bytes(key))
    except ValidationError as exc:
        raise PermanentError(
            f"the {stage.value} artifact is corrupt", code="corrupt_artifact"
        ) from exc
