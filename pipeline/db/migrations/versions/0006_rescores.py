"""rescores: re-scoring completed jobs with the tenant's current scorecard

Revision ID: 0006_rescores
Revises: 0005_tenant_config
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_rescores"
down_revision = "0005_tenant_config"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rescores",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("batch_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reanalyze", sa.Boolean(), nullable=False),
        sa.Column("config_version", sa.Integer(), nullable=True),
        sa.Column("old_score", JSON, nullable=True),
        sa.Column("new_score", JSON, nullable=True),
        sa.Column("changes", JSON, nullable=True),
        sa.Column("error_code", sa.String(length=60), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rescores", schema=None) as batch_op:
        batch_op.create_index("ix_rescores_tenant_created", ["tenant_id", "created_at"])
        batch_op.create_index("ix_rescores_batch", ["batch_id"])
        batch_op.create_index("ix_rescores_job", ["job_id"])


def downgrade() -> None:
    op.drop_table("rescores")
