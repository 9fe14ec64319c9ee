"""gpu_samples: GPM activity (SM active, SM occupancy, tensor active, DRAM bandwidth, NVLink throughput);
gpu_rollups_1m: their per-minute means (SM active, tensor active, DRAM bandwidth)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_COLUMNS = (
    'sm_active_ratio',
    'sm_occupancy_ratio',
    'tensor_active_ratio',
    'dram_bandwidth_ratio',
    'nvlink_tx_bytes_per_second',
    'nvlink_rx_bytes_per_second',
)

_ROLLUP_COLUMNS = ('sm_active_avg', 'tensor_active_avg', 'dram_bandwidth_avg')


def upgrade() -> None:
    # Nullable: rows already stored keep their values; GPUs without GPM (before Hopper) leave NULL.
    with op.batch_alter_table('gpu_samples', schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))
    with op.batch_alter_table('gpu_rollups_1m', schema=None) as batch_op:
        for name in _ROLLUP_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('gpu_rollups_1m', schema=None) as batch_op:
        for name in reversed(_ROLLUP_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table('gpu_samples', schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
