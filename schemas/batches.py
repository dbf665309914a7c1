"""Batches: request and response bodies of `/v1/batches` (a night's recordings as one object)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from schemas.api import ItemOptions, TranscriptTurn
from schemas.common import ChannelMap, Strict

BatchStatus = Literal["open", "closed", "cancelled", "completed"]


class BatchSource(Strict):
    storage_prefix: str = Field(
        pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/.*$",
        max_length=1024,
        description="s3://bucket/prefix/ — must be listed in the tenant's batches.import_prefixes",
    )


class BatchIn(Strict):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")
    call_type: str | None = Field(default=None, max_length=100)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Given to every item")
    channel_map: ChannelMap | None = None
    callback_url: str | None = Field(
        default=None, max_length=2048, description="Receives batch.completed (signed)"
    )
    source: BatchSource | None = Field(default=None, description="Server-side import")


class BatchItemIn(ItemOptions):
    """One line of `POST /v1/batches/{id}/items`: exactly one of upload_id, key, transcript."""

    upload_id: str | None = Field(default=None, max_length=40)
    key: str | None = Field(default=None, max_length=1024, description="A key under tenants/{you}/")
    transcript: (
        Annotated[list[TranscriptTurn], Field(min_length=1)]
        | Annotated[str, Field(min_length=1)]
        | None
    ) = None
    idempotency_key: str | None = Field(
        default=None,
        max_length=200,
        description="Unique in the batch: a retried line is not added twice",
    )

    @model_validator(mode="after")
    def _one_input(self) -> BatchItemIn:
        given = [f for f in ("upload_id", "key", "transcript") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of upload_id, key, transcript")
        return self


class BatchCounts(BaseModel):
    total: int
    backlog: int = Field(description="Accepted, waiting for the scheduler")
    running: int
    completed: int
    failed: int
    cancelled: int


class BatchFailure(BaseModel):
    code: str
    count: int


class BatchView(BaseModel):
    """The status document of a batch (`GET /v1/batches/{id}`), read from its counters."""

    id: str
    object: str = "batch"
    name: str
    status: BatchStatus
    call_type: str | None
    metadata: dict[str, Any]
    source: dict[str, Any] | None
    counts: BatchCounts
    progress: float = Field(description="Share of items finished, 0 … 1")
    created_at: datetime
    closed_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    items_per_s: float | None
    eta_s: float | None
    failures: list[BatchFailure]
    cost_usd: float = Field(default=0.0, description="Analysis cost of the completed items")
    saved_usd: float = Field(
        default=0.0,
        description="What Gemini's Batch API saved on them (tenant batches.gemini_batch)",
    )
    links: dict[str, str]


class BatchList(BaseModel):
    object: str = "list"
    data: list[BatchView]
    has_more: bool
    next_cursor: str | None


class BatchItemOut(BaseModel):
    line: int
    job_id: str
    duplicate: bool


class BatchItemError(BaseModel):
    line: int
    code: str
    detail: str


class BatchItemsResult(BaseModel):
    object: str = "batch_items"
    accepted: int
    duplicates: int
    rejected: list[BatchItemError]
    items: list[BatchItemOut]
    batch: BatchView
