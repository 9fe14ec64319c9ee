"""engine_rollups_1m: the cumulative TTFT and inter-token latency histograms at each minute's last
scrape, so the measured capacity can check its SLOs on periods whose raw scrapes retention removed

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: minutes rolled up before this migration have no latency histograms (their windows
    # count as unchecked in the capacity estimate).
    with op.batch_alter_table('engine_rollups_1m', schema=None) as batch_op:
        batch_op.add_column(sa.Column('latency_histograms', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('engine_rollups_1m', schema=None) as batch_op:
        batch_op.drop_column('latency_histograms')
