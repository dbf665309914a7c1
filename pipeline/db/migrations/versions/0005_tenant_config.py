"""tenant config versions: tenant_config_versions, tenants.config_version, api_keys.expires_at

A tenant configured before versioning gets its configuration recorded as version 1.

Revision ID: 0005_tenant_config
Revises: 0004_provider_checks
Create Date: 2026-11-22
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_tenant_config"
down_revision = "0004_provider_checks"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenant_config_versions",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "version"),
    )
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("config_version", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", TS, nullable=True))
    _record_existing_configs()


def _record_existing_configs() -> None:
    """Version 1 of every tenant that already had a configuration: its history starts there."""
    tenants = sa.table(
        "tenants", sa.column("id", sa.String), sa.column("config", JSON), sa.column("config_version")
    )
    versions = sa.table(
        "tenant_config_versions",
        sa.column("tenant_id", sa.String),
        sa.column("version", sa.Integer),
        sa.column("body", JSON),
        sa.column("created_at", TS),
        sa.column("author", sa.String),
        sa.column("comment", sa.Text),
    )
    bind = op.get_bind()
    now = datetime.now(UTC)
    for tenant_id, config in bind.execute(sa.select(tenants.c.id, tenants.c.config)).all():
        if not config:
            continue
        row = {"tenant_id": tenant_id, "version": 1, "body": config, "created_at": now}
        comment = "the configuration from before versioning"
        bind.execute(versions.insert().values(**row, author="migration", comment=comment))
        bind.execute(
            tenants.update().where(tenants.c.id == tenant_id).values(config_version=1)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("config_version")
    op.drop_table("tenant_config_versions")
