"""SQLAlchemy Core tables. Timestamps are UTC; every row carries the host it came from, so many
sidecars can share one PostgreSQL. Alembic migrations (agent/store/migrations) must match this
module: a test compares them. Which GPU and engine values have a column comes from the areas'
concept tables (agent/concepts), where each concept says whether it is stored."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from agent.concepts.engine import ENGINE_STORED_VALUES
from agent.concepts.gpu import GPU_STORED_FIELDS

metadata = MetaData()

_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only
_MONEY = Numeric(18, 6)


def _ts(name: str = "ts") -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=False)


gpu_samples = Table(
    "gpu_samples",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    _ts(),
    Column("host", String(255), nullable=False),
    Column("gpu_index", Integer, nullable=False),
    Column("uuid", String(96), nullable=False),
    Column("model", String(255), nullable=False),
    Column("up", Boolean, nullable=False),
    Column("simulated", Boolean, nullable=False, default=False),
    *(Column(name, Float, nullable=True) for name in GPU_STORED_FIELDS),
    Index("ix_gpu_samples_host_ts", "host", "ts"),
    Index("ix_gpu_samples_ts", "ts"),
)

engine_samples = Table(
    "engine_samples",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    _ts(),
    Column("host", String(255), nullable=False),
    Column("server", String(512), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("model", String(255), nullable=False),
    Column("engine", String(32), nullable=False),
    Column("up", Boolean, nullable=False),
    Column("simulated", Boolean, nullable=False, default=False),
    *(Column(name, Float, nullable=True) for name in ENGINE_STORED_VALUES),
    Column("histograms", Text, nullable=True),  # JSON: cumulative buckets of ENGINE_STORED_HISTOGRAMS
    Index("ix_engine_samples_host_ts", "host", "ts"),
    Index("ix_engine_samples_ts", "ts"),
)

request_records = Table(
    "request_records",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    _ts(),
    Column("host", String(255), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("upstream", String(512), nullable=False),
    Column("route", String(255), nullable=False),
    Column("method", String(16), nullable=False),
    Column("model", String(255), nullable=False),
    Column("status", Integer, nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("caller", String(64), nullable=False),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("cached_tokens", Integer),
    Column("ttft_seconds", Float),
    Column("latency_seconds", Float, nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("gap_mean_seconds", Float),
    Column("gap_p99_seconds", Float),
    Column("gap_max_seconds", Float),
    Column("finish_reason", String(32)),
    Column("output_chars", Integer),
    Column("refusal", Boolean),
    Column("json_requested", Boolean, nullable=False),
    Column("json_valid", Boolean),
    Column("non_ascii_ratio", Float),
    Column("error", String(255)),
    Column("simulated", Boolean, nullable=False, default=False),
    Column("team", String(255)),  # from the request header named in cost.team_header, when sent
    Column("reasoning_tokens", Integer),  # migration 0003
    Index("ix_request_records_host_ts", "host", "ts"),
    Index("ix_request_records_model_ts", "model", "ts"),
)

captured_outputs = Table(
    "captured_outputs",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    _ts(),
    Column("host", String(255), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("model", String(255), nullable=False),
    Column("text", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_captured_outputs_expires_at", "expires_at"),
)

drift_results = Table(
    "drift_results",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    _ts(),
    Column("host", String(255), nullable=False),
    Column("model", String(255), nullable=False),
    Column("feature", String(128), nullable=False),
    Column("method", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("drifted", Boolean, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("reference_start", DateTime(timezone=True), nullable=False),
    Column("reference_end", DateTime(timezone=True), nullable=False),
    Column("n_reference", Integer, nullable=False),
    Column("n_current", Integer, nullable=False),
    Column("details", Text, nullable=False),
    Index("ix_drift_results_model_ts", "model", "ts"),
)

cost_ledger = Table(
    "cost_ledger",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("hour", DateTime(timezone=True), nullable=False),
    Column("host", String(255), nullable=False),
    Column("gpus", Integer, nullable=False),
    Column("held_seconds", Float, nullable=False),  # wall seconds any GPU of the host was held
    Column("allocated_gpu_seconds", Float, nullable=False),  # = observed + gap GPU-seconds
    Column("observed_gpu_seconds", Float, nullable=False),  # held with telemetry
    Column("gpu_gap_seconds", Float, nullable=False),  # held without telemetry (agent down, GPU lost)
    Column("busy_gpu_seconds", Float, nullable=False),
    Column("engine_gap_seconds", Float, nullable=False),  # held wall seconds with no engine scrape up
    Column("energy_joules", Float, nullable=False),
    Column("gpu_cost_usd", _MONEY, nullable=False),  # allocation basis
    Column("usage_gpu_cost_usd", _MONEY, nullable=False),  # usage basis (busy share of gpu_cost_usd)
    Column("energy_cost_usd", _MONEY, nullable=False),
    Column("overhead_usd", _MONEY, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("generation_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("token_source", String(16), nullable=False),  # proxy / engine / none
    Column("api_pricing", Text, nullable=False),  # JSON: API-equivalent cost per baseline (agent.cost.ledger)
    Column("simulated", Boolean, nullable=False, default=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("hour", "host", name="uq_cost_ledger_hour_host"),
)

cost_hours = Table(
    # What was measured per host and hour, never what it cost: prices are applied at report time
    # (agent.cost.pricing), so a price change never needs these rows rewritten. Kept past raw
    # retention (the durable record of the cost engine); legacy cost_ledger rows are copied in by 0002.
    "cost_hours",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("hour", DateTime(timezone=True), nullable=False),
    Column("host", String(255), nullable=False),
    Column("gpus", Integer, nullable=False),
    Column("held_seconds", Float, nullable=False),
    Column("allocated_gpu_seconds", Float, nullable=False),
    Column("observed_gpu_seconds", Float, nullable=False),
    Column("gpu_gap_seconds", Float, nullable=False),
    Column("busy_gpu_seconds", Float, nullable=False),
    Column("engine_gap_seconds", Float, nullable=False),
    Column("energy_joules", Float, nullable=False),
    Column("engine_prompt_tokens", BigInteger, nullable=False),
    Column("engine_generation_tokens", BigInteger, nullable=False),
    Column("engine_cached_tokens", BigInteger, nullable=False),
    Column("engine_requests", BigInteger, nullable=False),
    Column("engine_prompt_histogram", Text),  # JSON HistogramSnapshot of the hour's prompt sizes
    Column("proxy_prompt_tokens", BigInteger, nullable=False),
    Column("proxy_generation_tokens", BigInteger, nullable=False),
    Column("proxy_cached_tokens", BigInteger, nullable=False),
    Column("proxy_requests", BigInteger, nullable=False),
    Column("proxy_unpriced_requests", BigInteger, nullable=False),
    Column("token_source", String(16), nullable=False),  # proxy / engine / none
    Column("request_groups", Boolean, nullable=False),  # cost_request_groups rows exist for this hour
    Column("simulated", Boolean, nullable=False, default=False),
    Column("measured_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("hour", "host", name="uq_cost_hours_hour_host"),
)

cost_request_groups = Table(
    # Proxied requests aggregated by half-hour slot, who sent them and input-size bucket: what
    # per-request API pricing (tiers, time-of-day prices) and attribution need, without the rows.
    "cost_request_groups",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("slot", DateTime(timezone=True), nullable=False),  # start of the 30-minute slot
    Column("hour", DateTime(timezone=True), nullable=False),
    Column("host", String(255), nullable=False),
    Column("model", String(255), nullable=False),
    Column("route", String(255), nullable=False),
    Column("caller", String(64), nullable=False),
    Column("team", String(255), nullable=False),  # the request's team header, "" without one
    Column("input_min", BigInteger, nullable=False),  # bucket of per-request input tokens, inclusive
    Column("input_max", BigInteger, nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    UniqueConstraint("slot", "host", "model", "route", "caller", "team", "input_min",
                     name="uq_cost_request_groups"),
    Index("ix_cost_request_groups_host_hour", "host", "hour"),
)

gpu_rollups_1m = Table(
    "gpu_rollups_1m",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("minute", DateTime(timezone=True), nullable=False),
    Column("host", String(255), nullable=False),
    Column("uuid", String(96), nullable=False),
    Column("gpu_index", Integer, nullable=False),
    Column("model", String(255), nullable=False),
    Column("samples", Integer, nullable=False),
    Column("up_samples", Integer, nullable=False),
    Column("utilization_avg", Float),
    Column("utilization_max", Float),
    Column("memory_used_max_bytes", Float),
    Column("memory_total_bytes", Float),
    Column("power_avg_watts", Float),
    Column("power_max_watts", Float),
    Column("energy_joules", Float),
    Column("temperature_max_celsius", Float),
    Column("simulated", Boolean, nullable=False, default=False),
    # migration 0007: GPM activity means (NULL for GPUs without GPM)
    Column("sm_active_avg", Float),
    Column("tensor_active_avg", Float),
    Column("dram_bandwidth_avg", Float),
    UniqueConstraint("minute", "host", "uuid", name="uq_gpu_rollups_1m"),
)

engine_rollups_1m = Table(
    "engine_rollups_1m",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("minute", DateTime(timezone=True), nullable=False),
    Column("host", String(255), nullable=False),
    Column("server", String(512), nullable=False),
    Column("model", String(255), nullable=False),
    Column("engine", String(32), nullable=False),
    Column("samples", Integer, nullable=False),
    Column("up_samples", Integer, nullable=False),
    Column("prompt_tokens", Float),
    Column("generation_tokens", Float),
    Column("requests_finished", Float),
    Column("requests_running_avg", Float),
    Column("requests_waiting_avg", Float),
    Column("kv_cache_usage_avg", Float),
    Column("kv_cache_usage_max", Float),
    Column("simulated", Boolean, nullable=False, default=False),
    # migration 0008: the minute's last cumulative TTFT / inter-token histograms (measured capacity)
    Column("latency_histograms", Text, nullable=True),
    UniqueConstraint("minute", "host", "server", "model", "engine", name="uq_engine_rollups_1m"),
)

rollup_state = Table(
    "rollup_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("host", String(255), primary_key=True),
    Column("done_until", DateTime(timezone=True), nullable=False),
)

spool_replays = Table(
    "spool_replays",
    metadata,
    # which lines of a batch (a spool segment, or one flush) are committed: written in the same
    # transaction as the rows, so a replay after a crash skips them (agent.store.writer)
    Column("segment", String(64), primary_key=True),
    Column("first_line", Integer, primary_key=True, autoincrement=False),
    Column("rows", Integer, nullable=False),
    Column("committed_at", DateTime(timezone=True), nullable=False),
    Index("ix_spool_replays_committed_at", "committed_at"),
)
