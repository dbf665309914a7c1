"""A tenant's configuration (schemas.tenant.TenantConfig), versioned: every change is a new version.

`load_config` is the one way stages and the API read it; `put_config` the one way it changes.
Version 0 is a tenant that was never configured (the defaults, or a body from before versioning).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db.models import Tenant
from pipeline.db.tenant_config_models import TenantConfigVersion
from pipeline.errors import PermanentError
from schemas.envelope import JobEnvelope
from schemas.tenant import TenantConfig


@dataclass(frozen=True)
class VersionedConfig:
    tenant_id: str
    version: int
    config: TenantConfig


@dataclass(frozen=True)
class ConfigVersionInfo:
    """One entry of a tenant's configuration history (the body is read with `load_config`)."""

    version: int
    created_at: datetime
    author: str
    comment: str


def load_config(session: Session, tenant_id: str, *, version: int | None = None) -> VersionedConfig:
    """The tenant's current configuration, or the given version of it.

    Raises PermanentError with code `tenant_missing` when the tenant does not exist,
    `config_version_missing` when it never had that version, and `tenant_config_invalid` when a
    stored body (written before versioning, or by hand) is not a valid TenantConfig.
    """
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise PermanentError("the tenant no longer exists", code="tenant_missing")
    if version is None or version == tenant.config_version:
        return VersionedConfig(tenant_id, tenant.config_version, parse_config(tenant.config))
    if version == 0:  # never configured: the defaults (no history row)
        return VersionedConfig(tenant_id, 0, TenantConfig())
    row = session.get(TenantConfigVersion, (tenant_id, version))
    if row is None:
        raise PermanentError(
            f"the tenant has no configuration version {version}", code="config_version_missing"
        )
    return VersionedConfig(tenant_id, row.version, parse_config(row.body))


def config_for_job(session: Session, envelope: JobEnvelope) -> VersionedConfig:
    """The configuration version a job was pinned to at intake (the current one for old jobs)."""
    return load_config(session, envelope.tenant_id, version=envelope.options.config_version)


def put_config(
    session: Session, tenant_id: str, config: TenantConfig, *, author: str, comment: str = ""
) -> int:
    """Store `config` as the tenant's new current version and return its number (1, 2, 3, …).

    The tenant row is locked (SELECT … FOR UPDATE), so two
    concurrent writers get consecutive versions; the primary key (tenant_id, version) is the
    backstop. Earlier versions are never rewritten. Raises PermanentError(`tenant_missing`).
    """
    query = (
        select(Tenant)
        .where(Tenant.id == tenant_id)
        .with_for_update()
        .execution_options(populate_existing=True)  # a cached row may be stale: re-read it locked
    )
    tenant = session.scalars(query).one_or_none()
    if tenant is None:
        raise PermanentError("the tenant no longer exists", code="tenant_missing")
    body = config.model_dump(mode="json")
    version = tenant.config_version + 1
    session.add(
        TenantConfigVersion(
            tenant_id=tenant_id, version=version, body=body, author=author, comment=comment
        )
    )
    tenant.config, tenant.config_version = body, version
    session.flush()
    return version


def list_versions(session: Session, tenant_id: str) -> list[ConfigVersionInfo]:
    """The tenant's configuration history, oldest first (empty for a never-configured tenant)."""
    rows = session.scalars(
        select(TenantConfigVersion)
        .where(TenantConfigVersion.tenant_id == tenant_id)
        .order_by(TenantConfigVersion.version)
    )
    return [ConfigVersionInfo(r.version, r.created_at, r.author, r.comment) for r in rows]


def parse_config(body: dict[str, object] | None) -> TenantConfig:
    """A stored configuration body as a TenantConfig; PermanentError `tenant_config_invalid`."""
    try:
        return TenantConfig.model_validate(body or {})
    except ValidationError as exc:
        raise PermanentError(
            "the stored tenant configuration is not valid", code="tenant_config_invalid"
        ) from exc
