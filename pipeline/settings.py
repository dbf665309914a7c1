"""The one place that maps environment variables to typed settings (see README's configuration table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


@dataclass(frozen=True)
class Deadlines:
    """How long a job's next action may take before the reaper re-drives it (docs/recovery.md).

    `queued_s` covers a stage that was published and waits in its queue (long enough for a nightly
    queue, whose length the backlog scheduler caps); `running_s` a running stage that stopped
    sending heartbeats (its worker died); heartbeats come every `heartbeat_s`.
    """

    queued_s: float = 900.0
    running_s: float = 120.0
    heartbeat_s: float = 30.0

    def queued(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.queued_s)

    def running(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.running_s)


DEFAULT_DEADLINES = Deadlines()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    database_url: str = Field(
        default="postgresql+psycopg://postgres@127.0.0.1:55432/callintel",
        description="SQLAlchemy URL (default: the embedded PostgreSQL that `make run` starts)",
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Celery broker")
    storage_url: str = Field(
        default="file://var/blobs", description="file://DIR or s3://BUCKET[/PREFIX]"
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (MinIO)")
    s3_region: str = "us-east-1"
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, description="413 above this")
    max_json_bytes: int = Field(
        default=10 * 1024 * 1024, description="413 above this for JSON bodies (read whole)"
    )
    max_form_field_bytes: int = Field(
        default=256 * 1024, description="413 above this for one text field of a multipart upload"
    )
    # Capacity limits (docs/limits.md): sized from bench/analysis_scaling.py so the slowest stage of
    # an accepted input finishes well within STAGE_SOFT_LIMIT_S. 422 `too_long` above them.
    max_transcript_chars: int = Field(
        default=300_000,
        ge=1,
        description="Characters of a submitted transcript's text, all turns together: local "
        "analysis costs ~0.6 CPU s per 1,000 (bench), so ~180 s, and under the 4x slowdown seen "
        "on a shared machine still inside the 900 s soft limit",
    )
    max_utterances: int = Field(
        default=6_000,
        ge=1,
        description="Turns of a submitted transcript: per-turn work (sentiment, rules, one "
        "embedding at least) binds for many short turns; ~4 hours of conversation",
    )
    max_audio_seconds: int = Field(
        default=3_600,
        ge=1,
        description="Recording duration: at the local pipeline's goal real-time factor (0.15) "
        "an hour takes ~540 s, 60 % of the soft limit; a WAV is measured at intake, other "
        "formats before decoding",
    )
    analysis_window_utterances: int = Field(
        default=200,
        ge=0,
        description="Local analysis reads long calls in windows of this many utterances "
        "(memory stays bounded, time grows linearly); 0: the whole call at once",
    )
    analysis_window_overlap: int = Field(
        default=10, ge=0, description="Utterances shared by consecutive analysis windows"
    )
    # Providers (README "Providers"). Tenants may override both choices; a cloud provider that is
    # chosen but not configured fails the job (provider_not_configured): never a silent fallback.
    transcriber: Literal["local", "assemblyai"] = "local"
    analyzer: Literal["local", "gemini"] = "local"
    admin_api_key: SecretStr | None = Field(default=None, description="Protects /v1/admin")
    assemblyai_api_key: SecretStr | None = None
    assemblyai_base_url: str = "https://api.assemblyai.com"
    assemblyai_timeout_s: float = 30.0
    assemblyai_speech_models: list[str] | None = Field(
        default=None, description='JSON list, e.g. ["universal"]; None: the provider\'s default'
    )
    assemblyai_poll_schedule_s: list[float] = Field(
        default=[3, 5, 10, 15, 20, 30, 45, 60, 60, 120, 120],
        description="Re-check countdowns while AssemblyAI works (task retries, no slot held)",
    )
    provider_check_tick_s: float = Field(default=1.0, description="How often beat sends due checks")
    storage_public: bool = Field(
        default=False,
        description="Providers can fetch from STORAGE_URL (presigned URLs); else bytes are uploaded",
    )
    provider_recheck_s: float = Field(
        default=300.0, description="After the poll schedule: database-scheduled re-checks"
    )
    provider_webhook_secret: SecretStr | None = Field(
        default=None, description="Signs AssemblyAI completion webhooks; default: derived"
    )
    upload_signing_secret: SecretStr | None = Field(
        default=None, description="Signs direct-upload URLs of a local store; default: derived"
    )
    upload_url_expires_s: int = Field(
        default=3600, ge=60, le=7 * 86400, description="How long a direct-upload URL is valid"
    )
    gemini_api_key: SecretStr | None = None
    gemini_base_url: str | None = None
    gemini_model: str = "gemini-2.5-flash"
    gemini_timeout_s: float = 60.0
    gemini_output_attempts: int = Field(default=3, ge=1, description="Tries on invalid JSON")
    gemini_chunk_chars: int = Field(default=60_000, description="Longer transcripts are chunked")
    gemini_usd_per_mtok_in: float = 0.30
    gemini_usd_per_mtok_out: float = 2.50
    gemini_batch_discount: float = Field(
        default=0.5, gt=0, le=1, description="Batch API price as a share of the synchronous one"
    )
    gemini_batch_poll_schedule_s: list[float] = Field(
        default=[60, 300, 900, 1800, 3600],
        description="Re-check countdowns while a Gemini batch job runs (no slot held)",
    )
    whisper_model: str | None = Field(default=None, description="Path; default: bundled tiny.en")
    whisper_threads: int = 0  # 0: CTranslate2 decides
    torch_threads: int = Field(
        default=1, ge=1, description="Torch CPU threads per worker process (local models)"
    )
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="text: key=value lines for people; json: one object per line"
    )
    # Metrics (docs/operations.md).
    metrics_token: SecretStr | None = Field(
        default=None, description="When set, GET /metrics needs `Authorization: Bearer <token>`"
    )
    worker_metrics_port: int = Field(
        default=0, ge=0, le=65535, description="A worker serves its metrics on this port; 0: off"
    )
    gauges_interval_s: float = Field(
        default=15.0, gt=0, description="How often beat samples the queue and backlog gauges"
    )
    public_base_url: str | None = None
    visibility_timeout_s: int = 3600
    stage_soft_limit_s: int = 900
    stage_hard_limit_s: int = 1200
    max_stage_attempts: int = 3
    # Recovery (docs/recovery.md): every unfinished job has a next action with a deadline.
    outbox_sweep_s: float = Field(
        default=5.0, gt=0, description="How often beat publishes outbox rows left unpublished"
    )
    outbox_claim_s: float = Field(
        default=15.0, gt=0, description="A publisher holds an outbox row this long before the sweep"
    )
    reaper_interval_s: float = Field(default=30.0, gt=0, description="How often beat reaps")
    queued_deadline_s: float = Field(
        default=Deadlines.queued_s,
        gt=0,
        description="A published stage must start within this, or the job is re-driven",
    )
    running_deadline_s: float = Field(
        default=Deadlines.running_s,
        gt=0,
        description="A running stage silent (no heartbeat) this long is re-driven",
    )
    heartbeat_s: float = Field(
        default=Deadlines.heartbeat_s, gt=0, description="How often a running stage says it lives"
    )
    max_redrives: int = Field(
        default=5, ge=1, description="Re-drives without progress before a job fails `stuck`"
    )
    broker_timeout_s: float = Field(
        default=2.0, gt=0, description="Workers: socket connect/read timeout on the broker"
    )
    publish_timeout_s: float = Field(
        default=0.25, gt=0, description="API: socket timeout of a publish; the outbox covers misses"
    )
    poll_after_s: int = Field(default=2, description="Retry-After sent while a job runs")
    # The backlog scheduler (docs/batches.md): batch items wait in the database until released.
    scheduler_tick_s: float = Field(default=1.0, gt=0, description="How often beat releases work")
    batch_max_in_flight: int = Field(
        default=32, ge=1, description="Batch items released and unfinished, all tenants together"
    )
    batch_tenant_max_in_flight: int = Field(
        default=16, ge=1, description="Per tenant, unless its config says otherwise"
    )
    assemblyai_max_in_flight: int = Field(
        default=200, ge=1, description="Batch items on AssemblyAI at once (its concurrency limit)"
    )
    gemini_max_in_flight: int = Field(
        default=64, ge=1, description="Batch items on Gemini at once (keeps under its RPM)"
    )
    # Rescores wait in the database too (docs/fairness.md), released up to these caps. Keep the
    # total below the slots of the worker that runs them (2 on the CPU worker of `make run` and
    # compose), so one-off jobs always find a free slot; raise both for analysis on a thread pool.
    rescore_max_in_flight: int = Field(
        default=1, ge=1, description="Rescores released and unfinished, all tenants together"
    )
    rescore_tenant_max_in_flight: int = Field(
        default=1, ge=1, description="Rescores released and unfinished, per tenant"
    )
    rescore_redrive_s: float = Field(
        default=2400.0, gt=0, description="A released rescore unfinished this long is re-released"
    )
    batch_max_items: int = Field(default=100_000, ge=1, description="Items one batch may hold")
    # Idempotency-Key and live progress (README "Idempotent retries", "Live progress").
    idempotency_ttl_s: int = Field(default=86400, ge=86400, description="Keys kept ≥ 24 h")
    idempotency_stale_after_s: int = 3600  # an in-flight key this old was abandoned (crash)
    events_poll_s: float = Field(default=1.0, gt=0, description="SSE: database poll interval")
    events_heartbeat_s: float = Field(default=15.0, gt=0, description="SSE: comment when idle")
    events_max_lifetime_s: float = Field(default=600.0, gt=0, description="SSE: then reconnect")
    events_max_streams: int = Field(default=8, ge=1, description="SSE streams per API process")
    # Per-tenant rate limits (docs/rate-limits.md): GCRA buckets in Redis per tenant and endpoint
    # class; a tenant's `rate_limits` override these. A rate of 0 disables that class.
    rate_limit_redis_url: str | None = Field(
        default=None, description="Redis holding the rate-limit buckets; default: REDIS_URL"
    )
    rate_limit_timeout_s: float = Field(
        default=0.15, gt=0, le=2, description="Socket timeout of a check; on a miss: fail open"
    )
    rate_limit_submit_per_s: float = Field(
        default=50.0, ge=0, description="POST /v1/jobs and batch item requests, per second"
    )
    rate_limit_submit_burst: int = Field(default=200, ge=1, description="…at once")
    rate_limit_upload_per_s: float = Field(
        default=20.0, ge=0, description="POST /v1/uploads, per second"
    )
    rate_limit_upload_burst: int = Field(default=100, ge=1, description="…at once")
    rate_limit_rescore_per_s: float = Field(
        default=2.0, ge=0, description="Rescore units per second (a bulk rescore: limit/100)"
    )
    rate_limit_rescore_burst: int = Field(default=10, ge=1, description="…at once")
    rate_limit_batch_per_s: float = Field(
        default=1.0, ge=0, description="POST /v1/batches, per second"
    )
    rate_limit_batch_burst: int = Field(default=10, ge=1, description="…at once")
    # Retention (docs/retention.md): a tenant's `retention_days` / `result_retention_days` win;
    # these apply to tenants that set none. None: kept until deleted.
    retention_audio_days: int | None = Field(
        default=None, ge=1, description="Days after a job finished until its audio is purged"
    )
    retention_result_days: int | None = Field(
        default=None, ge=1, description="Days after a job finished until its result and row go"
    )
    retention_batch_size: int = Field(
        default=100, ge=1, le=10_000, description="Jobs purged per transaction"
    )
    retention_max_batches: int = Field(
        default=50, ge=1, description="Batches one purge run does at most (the rest: next run)"
    )
    retention_interval_s: float = Field(default=3600.0, gt=0, description="How often purges run")
    # Webhooks (README "Webhooks"): Svix's schedule, delay before attempt 1, 2, … 8.
    webhook_retry_schedule_s: list[float] = Field(
        default=[0, 5, 300, 1800, 7200, 18000, 36000, 36000],
        description="Delay before each delivery attempt (JSON list); its length is the budget",
    )
    webhook_jitter: float = Field(default=0.2, ge=0, le=1, description="± share of each delay")
    webhook_max_retry_after_s: float = 36000.0  # a receiver's Retry-After is honoured up to this
    webhook_connect_timeout_s: float = 5.0
    webhook_read_timeout_s: float = 15.0
    webhook_total_timeout_s: float = Field(
        default=30.0, description="Deadline for a whole webhook attempt (a dripping receiver)"
    )
    webhook_response_cap_bytes: int = 4096  # read at most this much of a receiver's answer
    webhook_disable_after_s: float = Field(default=5 * 86400, description="Failing this long")
    webhook_secret_overlap_s: float = 86400.0  # the old secret still signs after a rotation
    webhook_dispatch_s: float = 2.0  # how often beat claims due deliveries
    webhook_lease_s: float = 120.0  # a claimed delivery whose task vanished is due again after
    webhook_allow_http: bool = False  # plain http:// URLs (development only)
    webhook_allow_loopback: bool = False  # test-only: lets tests reach a receiver on 127.0.0.1

    @property
    def deadlines(self) -> Deadlines:
        return Deadlines(self.queued_deadline_s, self.running_deadline_s, self.heartbeat_s)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process; tests call `get_settings.cache_clear()` after changing env."""
    return Settings()
