"""The versioned call result: what `GET /v1/jobs/{id}/result` returns and webhooks point to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from schemas.analysis import CallMetrics, Insights, SentimentReport
from schemas.common import RESULT_SCHEMA_VERSION, Message
from schemas.scorecard import ScoreArtifact
from schemas.transcript import Utterance


class CallInfo(Message):
    job_id: str
    external_id: str | None = None
    call_type: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class StageProvenance(Message):
    stage: str
    provider: str | None = None
    model: str | None = None
    duration_ms: int | None = None
    attempts: int = 0


class Provenance(Message):
    stages: list[StageProvenance]
    rules_version: str
    config_version: int | None = None  # the tenant configuration that analyzed and scored the call
    scorecard: str | None = None  # "id@version"
    audio_seconds: float = 0.0
    analyzer: str | None = None
    analyzer_model: str | None = None
    analyzer_calls: int = 0
    prompt_hash: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_cost_usd: float = 0.0
    batch_saved_usd: float = 0.0  # the synchronous price minus what the Batch API cost


class CallResult(Message):
    schema_version: str = RESULT_SCHEMA_VERSION
    call: CallInfo
    language: str | None
    duration_ms: int
    channels: int
    transcript: list[Utterance]
    metrics: CallMetrics
    sentiment: SentimentReport
    analysis: Insights | None
    score: ScoreArtifact
    provenance: Provenance
    created_at: datetime
