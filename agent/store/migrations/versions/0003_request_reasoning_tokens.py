"""request_records.reasoning_tokens: reasoning tokens reported in usage (chat completions'
completion_tokens_details, the Responses API's output_tokens_details); a part of completion_tokens.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reasoning_tokens', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.drop_column('reasoning_tokens')
