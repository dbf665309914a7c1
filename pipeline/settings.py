"""The one place that maps environment variables to typed settings (see README's configuration table)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    database_url: str = Field(default="sqlite:///var/callintel.db", description="SQLAlchemy URL")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Celery broker")
    storage_url: str = Field(
        default="file://var/blobs", description="file://DIR or s3://BUCKET[/PREFIX]"
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (MinIO)")
    s3_region: str = "us-east-1"
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, description="413 above this")
    transcriber: Literal["local"] = "local"
    whisper_model: str | None = Field(default=None, description="Path; default: bundled tiny.en")
    whisper_threads: int = 0  # 0: CTranslate2 decides
    log_level: str = "INFO"
    public_base_url: str | None = None
    visibility_timeout_s: int = 3600
    stage_soft_limit_s: int = 900
    stage_hard_limit_s: int = 1200
    max_stage_attempts: int = 3
    outbox_sweep_s: float = 10.0
    reaper_interval_s: float = 60.0
    poll_after_s: int = Field(default=2, description="Retry-After sent while a job runs")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process; tests call `get_settings.cache_clear()` after changing env."""
    return Settings()
