"""Every model module, imported once, so `Base.metadata` (Alembic, tests) sees all tables."""

from pipeline.db import (
    audit_models,
    batch_models,
    idempotency_models,
    models,
    rescore_models,
    tenant_config_models,
    webhook_models,
)
from pipeline.db.models import Base

__all__ = [
    "Base",
    "audit_models",
    "batch_models",
    "idempotency_models",
    "models",
    "rescore_models",
    "tenant_config_models",
    "webhook_models",
]
