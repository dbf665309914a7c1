"""rescore backlog: rescores wait in the database (`waiting`) until the scheduler releases them

Revision ID: 0010_rescore_backlog
Revises: 0009_retention
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_rescore_backlog"
down_revision = "0009_retention"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
UNFINISHED = sa.text("status IN ('waiting', 'queued', 'running')")


def upgrade() -> None:
    with op.batch_alter_table("rescores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("released_at", TS, nullable=True))
        batch_op.create_index(
            "ix_rescores_unfinished",
            ["tenant_id", "status", "created_at"],
            postgresql_where=UNFINISHED,
        )
    # Every rescore that exists already was published when it was created.
    op.execute("UPDATE rescores SET released_at = created_at")


def downgrade() -> None:
    # Waiting rescores were never published: they go back to `queued` with an outbox row each, as
    # the previous code wrote them at creation, so none is stranded.
    op.execute(
        "INSERT INTO outbox (topic, job_id, payload, created_at, attempts) "
        "SELECT 'rescore.start', r.job_id, "
        "jsonb_build_object('rescore_id', r.id, 'analyzer', NULL), now(), 0 "
        "FROM rescores r WHERE r.status = 'waiting'"
    )
    op.execute("UPDATE rescores SET status = 'queued' WHERE status = 'waiting'")
    with op.batch_alter_table("rescores", schema=None) as batch_op:
        batch_op.drop_index("ix_rescores_unfinished", postgresql_where=UNFINISHED)
        batch_op.drop_column("released_at")
