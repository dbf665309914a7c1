"""merge the webhooks and idempotency branches

Revision ID: 0003_merge
Revises: 0002_webhooks, 0002_idempotency
Create Date: 2026-11-21
"""

from __future__ import annotations

revision = "0003_merge"
down_revision = ("0002_webhooks", "0002_idempotency")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
