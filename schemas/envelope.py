"""The task envelope: what travels between pipeline stages on the queue. IDs and keys, never blobs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import ENVELOPE_SCHEMA_VERSION, ChannelMap, InputKind, Message, Role


class JobInput(Message):
    kind: InputKind
    blob_key: str
    sha256: str
    content_type: str
    bytes: int
    format: str | None = None  # wav, mp3, flac, ogg, m4a, webm, json
    channels: int | None = None
    duration_ms: int | None = None


class JobOptions(Message):
    """Per-job processing options, resolved from the request and the tenant's defaults at intake."""

    language: str | None = None
    channel_map: ChannelMap = Field(default_factory=lambda: {0: Role.AGENT, 1: Role.CUSTOMER})
    call_type: str | None = None
    # Providers chosen at intake (tenant override, else the deployment's); None: decided at run time.
    transcriber: str | None = None
    analyzer: str | None = None
    # The tenant configuration version current at intake: every stage of the job reads this one,
    # so a change mid-job never mixes versions (a rescore pins the version current then).
    config_version: int | None = None
    # "batch": the analysis goes through the provider's batch API (cheaper, slower); pinned at
    # intake for batch items of a tenant that opted in. None: one synchronous request per chunk.
    analysis_mode: Literal["batch"] | None = None

    # One reading of the pinned providers for the chain's routing and the stages (None: a job
    # accepted before providers were pinned, which ran locally).
    @property
    def cloud_speech(self) -> bool:
        return self.transcriber == "assemblyai"

    @property
    def analyzer_name(self) -> str:
        return self.analyzer or "local"


class JobEnvelope(Message):
    schema_version: int = ENVELOPE_SCHEMA_VERSION
    job_id: str
    tenant_id: str
    input: JobInput
    artifacts: dict[str, str] = Field(default_factory=dict)
    options: JobOptions = Field(default_factory=JobOptions)
