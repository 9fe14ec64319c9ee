"""request_records.language dropped: nothing ever filled it (the proxy detects no language), and the
drift features no longer list it. Rows keep every other value; a downgrade brings the column back
empty.

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.drop_column('language')


def downgrade() -> None:
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=16), nullable=True))
