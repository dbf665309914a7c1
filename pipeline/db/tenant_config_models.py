"""The `tenant_config_versions` table: every configuration a tenant ever had, one row per version.

Rows are written once and never rewritten; `tenants.config` / `tenants.config_version` mirror the
newest, so authentication reads the current configuration with the tenant in one query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.db.models import Base, utcnow


class TenantConfigVersion(Base):
    __tablename__ = "tenant_config_versions"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    body: Mapped[dict[str, Any]]  # a TenantConfig, model_dump(mode="json")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    author: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
