"""HTTP request and response bodies of the public API (the OpenAPI document is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from schemas.common import ChannelMap, JobStatus, Strict


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class ClientInput(Strict):
    """Client text must be storable: NUL characters are refused (PostgreSQL cannot hold them)."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if _has_nul(data):
            raise ValueError("text must not contain NUL (U+0000) characters")
        return data


class TranscriptTurn(ClientInput):
    speaker: str = Field(description="'agent', 'customer', or any label (e.g. a name)")
    text: str = Field(min_length=1)
    start_ms: int | None = Field(default=None, ge=0)
    end_ms: int | None = Field(default=None, ge=0)


class ItemOptions(ClientInput):
    """What a client may say about one call, alone or as a batch item."""

    external_id: str | None = Field(default=None, max_length=200)
    agent_id: str | None = Field(default=None, max_length=200)
    call_type: str | None = Field(default=None, max_length=100)
    language: str | None = Field(default=None, max_length=16)
    channel_map: ChannelMap | None = Field(
        default=None, description='Audio channel index → role, e.g. {"0": "agent", "1": "customer"}'
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Free-form, returned as given"
    )


class JobOptionsIn(ItemOptions):
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description="https:// URL that receives this job's job.completed / job.failed event, "
        "signed with the tenant's callback secret (POST /v1/webhooks/callback-secret)",
    )
    batch_id: str | None = Field(
        default=None, max_length=40, description="Join this open batch (its backlog, its defaults)"
    )


class TranscriptJobIn(JobOptionsIn):
    """JSON body of `POST /v1/jobs` for a text transcript: a list of turns, or `Agent: …` lines."""

    transcript: (
        Annotated[list[TranscriptTurn], Field(min_length=1)] | Annotated[str, Field(min_length=1)]
    )


class StepView(BaseModel):
    stage: str
    state: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    provider: str | None


class JobError(BaseModel):
    stage: str | None
    code: str
    message: str


class InputView(BaseModel):
    kind: str = Field(description="audio or transcript")
    purged_at: datetime | None = Field(
        description="When retention removed the audio, transcript and artifacts (the result stays)"
    )


class JobView(BaseModel):
    """The status document of a job (`GET /v1/jobs/{id}`)."""

    id: str
    object: str = "job"
    status: JobStatus
    stage: str | None
    progress: float = Field(description="Share of stages finished, 0 … 1")
    input_kind: str
    input: InputView
    external_id: str | None
    call_type: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    error: JobError | None
    steps: list[StepView]
    links: dict[str, str]


class JobList(BaseModel):
    object: str = "list"
    data: list[JobView]
    has_more: bool
    next_cursor: str | None


class AuditEventView(BaseModel):
    """One deletion or purge (`GET /v1/audit-events`): counts of what went, never content."""

    id: str
    object: str = "audit_event"
    job_id: str
    actor: str = Field(description="The API key id that deleted, or `retention`")
    action: str = Field(description="job.deleted, job.input_purged or job.purged")
    removed: dict[str, int] = Field(description="Counts by kind: blobs, results, steps, …")
    at: datetime


class AuditEventList(BaseModel):
    object: str = "list"
    data: list[AuditEventView]
    has_more: bool
    next_cursor: str | None


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable machine-readable `code`."""

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
    # Capacity refusals (413 too_large, 422 too_long) name the limit and what was measured.
    setting: str | None = None
    limit: int | None = None
    measured: int | None = None
    unit: str | None = None
