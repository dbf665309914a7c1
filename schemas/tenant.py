"""A tenant's configuration: client context for analysis, defaults, providers, packs and scorecards.

Managed by the admin API and `callintel tenants config`; every change is a new version, and results
record the version that analyzed and scored them.
"""

from __future__ import annotations

from datetime import time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from schemas.common import ChannelMap, Strict
from schemas.scorecard import Scorecard


class IntentDef(Strict):
    """One customer intent of the tenant's taxonomy; `examples` are phrases a customer would say."""

    name: str = Field(min_length=1, max_length=80)
    description: str = ""
    examples: list[str] = Field(default_factory=list)


class ClientContext(Strict):
    """What the analyzer is told about the business. Comes from the tenant's config, never a request."""

    business_description: str = ""
    company_names: list[str] = Field(default_factory=list)  # also a role cue: the agent says these
    policies: list[str] = Field(default_factory=list)
    compliance_rules: list[str] = Field(default_factory=list)
    risk_triggers: list[str] = Field(default_factory=list)  # phrases that raise the risk score
    glossary: dict[str, str] = Field(
        default_factory=dict
    )  # term → meaning ("PTP" → promise to pay)
    intents: list[IntentDef] = Field(default_factory=list)  # empty: the built-in taxonomy


class JobDefaults(Strict):
    """Options a job gets when its request does not say."""

    language: str | None = None
    channel_map: ChannelMap | None = None
    call_type: str | None = None


class ProviderChoice(Strict):
    """Per-tenant provider overrides (None: the deployment's TRANSCRIBER / ANALYZER)."""

    transcriber: Literal["local", "assemblyai"] | None = None
    analyzer: Literal["local", "gemini"] | None = None
    speech_models: list[str] | None = None
    speakers_expected: int | None = Field(default=None, ge=1, le=10)


class ProcessingWindow(Strict):
    """Hours when the tenant's batch items may be released, in its own time zone.

    `start` after `end` spans midnight (20:00 → 06:00). One-off jobs are never held by it.
    """

    start: time
    end: time
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class BatchPolicy(Strict):
    """How the backlog scheduler treats this tenant's batch items."""

    weight: int = Field(default=1, ge=1, le=100, description="Share of capacity against others")
    max_in_flight: int | None = Field(
        default=None, ge=1, le=10_000, description="Batch items released at once (None: ours)"
    )
    window: ProcessingWindow | None = None
    import_prefixes: list[str] = Field(
        default_factory=list,
        description="s3://bucket/prefix/ locations a batch may import from (server-side import)",
    )
    gemini_batch: bool = Field(
        default=False,
        description="Batch items analyzed by Gemini go through its Batch API: half the price, "
        "results within 24 h (docs/batches.md, Nightly economy)",
    )


class RateLimit(Strict):
    """A sustained rate and a burst; `per_s` 0 lifts the limit for this tenant."""

    per_s: float = Field(ge=0, le=100_000, description="Units a second, sustained")
    burst: int = Field(ge=1, le=1_000_000, description="Units at once (a full bucket)")


class RateLimits(Strict):
    """Per-tenant overrides of the deployment's RATE_LIMIT_* settings (None: the deployment's)."""

    submit: RateLimit | None = None  # POST /v1/jobs, POST /v1/batches/{id}/items
    upload: RateLimit | None = None  # POST /v1/uploads
    rescore: RateLimit | None = None  # POST /v1/jobs/{id}/rescore (1), POST /v1/rescore (limit/100)
    batch: RateLimit | None = None  # POST /v1/batches


class TenantConfig(Strict):
    context: ClientContext = Field(default_factory=ClientContext)
    defaults: JobDefaults = Field(default_factory=JobDefaults)
    providers: ProviderChoice = Field(default_factory=ProviderChoice)
    dedupe: Literal["off", "sha256", "external_id"] = "off"
    retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Days after a job finished until its audio, transcript and artifacts are "
        "purged (the result stays); None: the deployment's RETENTION_AUDIO_DAYS",
    )
    result_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Days after a job finished until its result and the job itself are purged; "
        "None: the deployment's RETENTION_RESULT_DAYS",
    )
    batches: BatchPolicy = Field(default_factory=BatchPolicy)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    packs: list[str] = Field(default_factory=list)  # shipped packs enabled for this tenant
    scorecards: dict[str, Scorecard] = Field(
        default_factory=dict, description="call_type → scorecard; key 'default' for any call type"
    )
