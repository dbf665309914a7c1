"""provider checks: job_steps.provider_ref (the provider's job id), submitted and next-check times

Revision ID: 0004_provider_checks
Revises: 0003_merge
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_provider_checks"
down_revision = "0003_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_ref", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("provider_submitted_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_job_steps_next_check", ["next_check_at"], unique=False)
        batch_op.create_index("ix_job_steps_provider_ref", ["provider_ref"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("job_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_job_steps_provider_ref")
        batch_op.drop_index("ix_job_steps_next_check")
        batch_op.drop_column("provider_submitted_at")
        batch_op.drop_column("next_check_at")
        batch_op.drop_column("provider_ref")
