"""recovery: every unfinished job carries the deadline of its next action; outbox rows are claimed
before they are published

Revision ID: 0008_recovery
Revises: 0007_batches
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_recovery"
down_revision = "0007_batches"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("jobs", sa.Column("next_action_at", TS, nullable=True))
    # The reaper reads only overdue unfinished jobs: a partial index keeps finished ones out.
    op.create_index(
        "ix_jobs_next_action",
        "jobs",
        ["next_action_at"],
        postgresql_where=sa.text("next_action_at IS NOT NULL"),
    )
    op.add_column("outbox", sa.Column("claimed_until", TS, nullable=True))
    # Jobs already running when this migration runs get a deadline one reaper period away.
    op.execute(
        "UPDATE jobs SET next_action_at = now() + interval '15 minutes' "
        "WHERE status NOT IN ('completed', 'failed', 'cancelled') AND released_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_column("outbox", "claimed_until")
    op.drop_index("ix_jobs_next_action", table_name="jobs")
    op.drop_column("jobs", "next_action_at")
