"""batches: a night's recordings as one object; batch items wait in a backlog until released

Revision ID: 0007_batches
Revises: 0006_rescores
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007_batches"
down_revision = "0006_rescores"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("call_type", sa.String(length=100), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("channel_map", JSON, nullable=True),
        sa.Column("callback_url", sa.String(length=2048), nullable=True),
        sa.Column("source", JSON, nullable=True),
        sa.Column("import_state", JSON, nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("backlog", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Integer(), nullable=False),
        sa.Column("failure_codes", JSON, nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("saved_usd", sa.Float(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index("ix_batches_tenant_created", ["tenant_id", "created_at", "id"])
        batch_op.create_index("ix_batches_tenant_name", ["tenant_id", "name"])
        batch_op.create_index("ix_batches_backlog", ["backlog"])
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("item_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("released_at", TS, nullable=True))
        batch_op.create_index("ix_jobs_batch", ["batch_id", "id"])
        batch_op.create_index("ix_jobs_batch_item_key", ["batch_id", "item_key"], unique=True)
        batch_op.create_index("ix_jobs_backlog", ["tenant_id", "released_at", "created_at"])
    with op.batch_alter_table("job_steps", schema=None) as batch_op:
        batch_op.create_index("ix_job_steps_state", ["state"])
    # Every job that exists already was published when it was created.
    op.execute("UPDATE jobs SET released_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("job_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_job_steps_state")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_backlog")
        batch_op.drop_index("ix_jobs_batch_item_key")
        batch_op.drop_index("ix_jobs_batch")
        batch_op.drop_column("released_at")
        batch_op.drop_column("item_key")
        batch_op.drop_column("batch_id")
    op.drop_table("batches")
