"""Bodies of `/v1/admin/…` (tenants, their configuration and API keys) and of `/v1/tenant`.

Key documents never carry a key's hash; a key's secret appears once, in the answer that made it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from schemas.api import ClientInput
from schemas.tenant import TenantConfig

NAME = Field(min_length=1, max_length=200)


class TenantIn(ClientInput):
    name: str = NAME
    config: dict[str, Any] | None = Field(
        default=None, description="A TenantConfig; given: stored as version 1"
    )


class TenantPatch(ClientInput):
    name: str | None = Field(default=None, min_length=1, max_length=200)


class TenantView(BaseModel):
    id: str
    object: str = "tenant"
    name: str
    config_version: int = Field(description="0: never configured (the defaults)")
    created_at: datetime


class TenantList(BaseModel):
    object: str = "list"
    data: list[TenantView]


class ConfigView(BaseModel):
    """One version of a tenant's configuration (the current one unless a version was asked for)."""

    object: str = "tenant_config"
    tenant_id: str
    version: int
    config: TenantConfig


class ConfigVersionView(BaseModel):
    version: int
    created_at: datetime
    author: str
    comment: str


class ConfigVersionList(BaseModel):
    object: str = "list"
    data: list[ConfigVersionView]


class KeyIn(ClientInput):
    name: str = Field(default="", max_length=200)


class RotateIn(ClientInput):
    overlap_s: int = Field(
        default=86400, ge=0, le=30 * 86400, description="How long the old key keeps working"
    )


class KeyView(BaseModel):
    id: str
    object: str = "api_key"
    name: str
    prefix: str = Field(description="The first characters of the key, to recognise it")
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None = Field(description="Set by a rotation: the key stops then")
    revoked_at: datetime | None


class KeyCreated(KeyView):
    secret: str = Field(description="The API key: shown once, never again")


class KeyRotated(KeyCreated):
    previous: KeyView = Field(description="The rotated key; it works until its expires_at")


class KeyList(BaseModel):
    object: str = "list"
    data: list[KeyView]


class TenantSelfView(BaseModel):
    """`GET /v1/tenant`: the calling tenant and its own current configuration."""

    id: str
    object: str = "tenant"
    name: str
    config_version: int
    config: TenantConfig
