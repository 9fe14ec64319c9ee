"""spool_replays: committed batch markers for exactly-once spool replay

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('spool_replays',
    sa.Column('segment', sa.String(length=64), nullable=False),
    sa.Column('first_line', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('committed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('segment', 'first_line')
    )
    with op.batch_alter_table('spool_replays', schema=None) as batch_op:
        batch_op.create_index('ix_spool_replays_committed_at', ['committed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('spool_replays', schema=None) as batch_op:
        batch_op.drop_index('ix_spool_replays_committed_at')
    op.drop_table('spool_replays')
