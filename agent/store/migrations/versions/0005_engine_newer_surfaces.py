"""engine_samples: vLLM 0.32 / SGLang 0.5.2x counters (admission rejections, spec-decode tokens,
per-GPU FLOPs and memory-traffic estimates)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_COLUMNS = (
    'admission_rejections_total',
    'spec_decode_accepted_tokens_total',
    'spec_decode_draft_tokens_total',
    'estimated_flops_total',
    'estimated_read_bytes_total',
    'estimated_write_bytes_total',
)


def upgrade() -> None:
    # Nullable: rows already stored keep their values; servers that do not serve a family leave NULL.
    with op.batch_alter_table('engine_samples', schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('engine_samples', schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
