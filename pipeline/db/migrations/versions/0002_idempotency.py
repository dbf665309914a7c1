"""idempotency keys; jobs.input_sha256 for duplicate-content detection

Revision ID: 0002_idempotency
Revises: 0001
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002_idempotency'
down_revision = '0001'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('idempotency_keys',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('method', sa.String(length=10), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=True),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response_headers', JSON, nullable=False),
    sa.Column('response_body', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('completed_at', TS, nullable=True),
    sa.Column('expires_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'key', name='uq_idempotency_keys_tenant_key')
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_keys_expires', ['expires_at'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('input_sha256', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_jobs_tenant_input_sha256', ['tenant_id', 'input_sha256'], unique=False)
    _backfill_input_sha256()


def _backfill_input_sha256() -> None:
    """Jobs created before this revision carry the hash only inside their envelope."""
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE jobs SET input_sha256 = envelope->'input'->>'sha256' WHERE input_sha256 IS NULL")
    else:
        op.execute("UPDATE jobs SET input_sha256 = json_extract(envelope, '$.input.sha256') WHERE input_sha256 IS NULL")


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_tenant_input_sha256')
        batch_op.drop_column('input_sha256')

    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_keys_expires')

    op.drop_table('idempotency_keys')
