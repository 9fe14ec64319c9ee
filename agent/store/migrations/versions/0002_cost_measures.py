"""cost measures: hourly measures and request groups priced at report time; request team

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('cost_hours',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('gpus', sa.Integer(), nullable=False),
    sa.Column('held_seconds', sa.Float(), nullable=False),
    sa.Column('allocated_gpu_seconds', sa.Float(), nullable=False),
    sa.Column('observed_gpu_seconds', sa.Float(), nullable=False),
    sa.Column('gpu_gap_seconds', sa.Float(), nullable=False),
    sa.Column('busy_gpu_seconds', sa.Float(), nullable=False),
    sa.Column('engine_gap_seconds', sa.Float(), nullable=False),
    sa.Column('energy_joules', sa.Float(), nullable=False),
    sa.Column('engine_prompt_tokens', sa.BigInteger(), nullable=False),
    sa.Column('engine_generation_tokens', sa.BigInteger(), nullable=False),
    sa.Column('engine_cached_tokens', sa.BigInteger(), nullable=False),
    sa.Column('engine_requests', sa.BigInteger(), nullable=False),
    sa.Column('engine_prompt_histogram', sa.Text(), nullable=True),
    sa.Column('proxy_prompt_tokens', sa.BigInteger(), nullable=False),
    sa.Column('proxy_generation_tokens', sa.BigInteger(), nullable=False),
    sa.Column('proxy_cached_tokens', sa.BigInteger(), nullable=False),
    sa.Column('proxy_requests', sa.BigInteger(), nullable=False),
    sa.Column('proxy_unpriced_requests', sa.BigInteger(), nullable=False),
    sa.Column('token_source', sa.String(length=16), nullable=False),
    sa.Column('request_groups', sa.Boolean(), nullable=False),
    sa.Column('simulated', sa.Boolean(), nullable=False),
    sa.Column('measured_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hour', 'host', name='uq_cost_hours_hour_host')
    )
    op.create_table('cost_request_groups',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('slot', sa.DateTime(timezone=True), nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('model', sa.String(length=255), nullable=False),
    sa.Column('route', sa.String(length=255), nullable=False),
    sa.Column('caller', sa.String(length=64), nullable=False),
    sa.Column('team', sa.String(length=255), nullable=False),
    sa.Column('input_min', sa.BigInteger(), nullable=False),
    sa.Column('input_max', sa.BigInteger(), nullable=False),
    sa.Column('requests', sa.BigInteger(), nullable=False),
    sa.Column('input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('output_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cached_tokens', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slot', 'host', 'model', 'route', 'caller', 'team', 'input_min',
                        name='uq_cost_request_groups')
    )
    with op.batch_alter_table('cost_request_groups', schema=None) as batch_op:
        batch_op.create_index('ix_cost_request_groups_host_hour', ['host', 'hour'], unique=False)
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team', sa.String(length=255), nullable=True))
    # What the legacy ledger measured is kept: its hours become measures (their API pricing is
    # redone at report time from the hour's token totals, as no request groups exist for them).
    op.execute(
        "INSERT INTO cost_hours (hour, host, gpus, held_seconds, allocated_gpu_seconds, observed_gpu_seconds, "
        "gpu_gap_seconds, busy_gpu_seconds, engine_gap_seconds, energy_joules, engine_prompt_tokens, "
        "engine_generation_tokens, engine_cached_tokens, engine_requests, engine_prompt_histogram, "
        "proxy_prompt_tokens, proxy_generation_tokens, proxy_cached_tokens, proxy_requests, "
        "proxy_unpriced_requests, token_source, request_groups, simulated, measured_at) "
        "SELECT hour, host, gpus, held_seconds, allocated_gpu_seconds, observed_gpu_seconds, gpu_gap_seconds, "
        "busy_gpu_seconds, engine_gap_seconds, energy_joules, "
        "CASE WHEN token_source = 'engine' THEN prompt_tokens ELSE 0 END, "
        "CASE WHEN token_source = 'engine' THEN generation_tokens ELSE 0 END, "
        "CASE WHEN token_source = 'engine' THEN cached_tokens ELSE 0 END, "
        "CASE WHEN token_source = 'engine' THEN requests ELSE 0 END, NULL, "
        "CASE WHEN token_source = 'proxy' THEN prompt_tokens ELSE 0 END, "
        "CASE WHEN token_source = 'proxy' THEN generation_tokens ELSE 0 END, "
        "CASE WHEN token_source = 'proxy' THEN cached_tokens ELSE 0 END, "
        "CASE WHEN token_source = 'proxy' THEN requests ELSE 0 END, 0, "
        "token_source, false, simulated, computed_at FROM cost_ledger"
    )


def downgrade() -> None:
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.drop_column('team')
    with op.batch_alter_table('cost_request_groups', schema=None) as batch_op:
        batch_op.drop_index('ix_cost_request_groups_host_hour')
    op.drop_table('cost_request_groups')
    op.drop_table('cost_hours')
