from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select

from agent.samples import EngineSample, GpuSample, HistogramSnapshot
from agent.store.db import open_engine, open_store
from agent.store.maintenance import apply_retention, maintain
from agent.store.migrate import head_revision, upgrade
from agent.store.schema import engine_rollups_1m, engine_samples, gpu_rollups_1m, gpu_samples, metadata
from agent.store.writer import StoreWriter
from agent.telemetry import Telemetry
from agent.utc import as_utc

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


def gpu(ts: datetime, energy: float | None, util: float = 0.5, up: bool = True, host: str = "h1") -> GpuSample:
    values = {"utilization_ratio": util, "power_watts": 300.0, "memory_used_bytes": 7e10,
              "memory_total_bytes": 8e10}
    if energy is not None:
        values["energy_joules_total"] = energy
    return GpuSample(ts=ts, host=host, gpu_index=0, uuid="GPU-0", model="H100", up=up,
                     values=values if up else {})


def test_migrations_create_exactly_the_declared_schema(db_url: str) -> None:
    engine = open_engine(db_url)
    assert upgrade(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []
    assert set(inspect(engine).get_table_names()) >= set(metadata.tables)
    assert upgrade(engine) == head_revision()  # idempotent


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_writer_flushes_all_queued_rows_in_one_transaction_on_both_backends(db_url: str) -> None:
    engine = open_store(db_url, upgrade=True)
    telemetry = Telemetry("h1")
    writer = StoreWriter(engine, telemetry)
    rows = [gpu(T0 + timedelta(seconds=i), 1000.0 + i) for i in range(50)]
    hist = HistogramSnapshot(((0.1, 3.0), (float("inf"), 5.0)), 1.2, 5.0)
    rows_engine = [EngineSample(ts=T0, host="h1", server="http://x/metrics", kind="vllm", model="m", engine="0",
                                up=True, values={"prompt_tokens_total": 10.0}, histograms={"ttft_seconds": hist})]
    assert writer.offer(rows) == 50
    assert writer.offer(rows_engine) == 1
    assert writer.flush() == 51
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(gpu_samples)).scalar() == 50
        stored = conn.execute(select(engine_samples)).one()
        ts = conn.execute(select(gpu_samples.c.ts).order_by(gpu_samples.c.ts)).scalars().first()
    assert ts is not None
    assert as_utc(ts) == T0
    assert json.loads(stored.histograms)["ttft_seconds"]["buckets"][-1] == ["+Inf", 5.0]
    assert telemetry.written_count("gpu_samples") == 50


def test_failed_flush_keeps_rows_for_the_next_one(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)  # not migrated yet: inserts fail
    telemetry = Telemetry("h1")
    writer = StoreWriter(engine, telemetry)
    writer.offer([gpu(T0, 1.0), gpu(T0 + timedelta(seconds=1), 2.0)])
    assert writer.flush() == 0
    assert writer.pending() == 2 and writer.last_error
    upgrade(engine)
    assert writer.flush() == 2
    assert writer.pending() == 0


def test_full_queue_drops_and_counts_the_overflow(sqlite_url: str) -> None:
    telemetry = Telemetry("h1")
    writer = StoreWriter(open_engine(sqlite_url), telemetry, queue_max_rows=100)
    accepted = writer.offer([gpu(T0 + timedelta(seconds=i), float(i)) for i in range(130)],
                            drop_reason="proxy_queue_full")
    assert accepted == 100
    assert telemetry.dropped_count("proxy_queue_full") == 30


def test_rollup_energy_survives_a_counter_reset(db_url: str) -> None:
    engine = open_store(db_url, upgrade=True)
    writer = StoreWriter(engine, Telemetry("h1"))
    # minute 0: energy 1000 -> 1590 (+590 over 60 samples); minute 1: reset to 5 then climbs by 10/s
    rows = [gpu(T0 + timedelta(seconds=i), 1000.0 + 10 * i) for i in range(60)]
    rows += [gpu(T0 + timedelta(seconds=60 + i), 5.0 + 10 * i) for i in range(60)]
    rows.append(gpu(T0 + timedelta(seconds=125), None, up=False))
    writer.offer(rows)
    writer.flush()
    report = maintain(engine, "h1", raw_days=7, rollup_days=400, now=T0 + timedelta(minutes=3))
    assert report.gpu_minutes == 3
    with engine.connect() as conn:
        got = {as_utc(r.minute): r for r in conn.execute(select(gpu_rollups_1m)).all()}
    first, second = got[T0], got[T0 + timedelta(minutes=1)]
    assert first.energy_joules == pytest.approx(590.0)
    # 5 (since the reset) + 59 * 10
    assert second.energy_joules == pytest.approx(595.0)
    assert second.samples == 60 and second.utilization_avg == pytest.approx(0.5)
    third = got[T0 + timedelta(minutes=2)]
    assert third.samples == 1 and third.up_samples == 0 and third.utilization_avg is None
    # rerunning is idempotent
    maintain(engine, "h1", raw_days=7, rollup_days=400, now=T0 + timedelta(minutes=3))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(gpu_rollups_1m)).scalar() == 3


def test_engine_rollup_counts_token_increase_across_a_restart(sqlite_url: str) -> None:
    engine = open_store(sqlite_url, upgrade=True)
    writer = StoreWriter(engine, Telemetry("h1"))
    counters = [100.0, 200.0, 300.0, 20.0, 70.0]  # server restarted between 300 and 20
    rows = [EngineSample(ts=T0 + timedelta(seconds=10 * i), host="h1", server="s", kind="vllm", model="m",
                         engine="0", up=True, values={"generation_tokens_total": c, "kv_cache_usage_ratio": 0.5})
            for i, c in enumerate(counters)]
    writer.offer(rows)
    writer.flush()
    maintain(engine, "h1", raw_days=7, rollup_days=400, now=T0 + timedelta(minutes=1))
    with engine.connect() as conn:
        row = conn.execute(select(engine_rollups_1m)).one()
    assert row.generation_tokens == pytest.approx(100 + 100 + 20 + 50)
    assert row.kv_cache_usage_avg == pytest.approx(0.5)


def test_retention_deletes_only_rolled_up_raw_rows_of_this_host(sqlite_url: str) -> None:
    engine = open_store(sqlite_url, upgrade=True)
    writer = StoreWriter(engine, Telemetry("h1"))
    old = T0 - timedelta(days=10)
    writer.offer([gpu(old + timedelta(seconds=i), float(i)) for i in range(3)]
                 + [gpu(old, 1.0, host="other")] + [gpu(T0, 5.0)])
    writer.flush()
    # nothing rolled up yet: raw rows stay even though they are past retention
    assert apply_retention(engine, "h1", raw_days=7, rollup_days=400, now=T0).get("gpu_samples", 0) == 0
    maintain(engine, "h1", raw_days=7, rollup_days=400, now=T0 + timedelta(minutes=1))
    with engine.connect() as conn:
        hosts = conn.execute(select(gpu_samples.c.host, func.count()).group_by(gpu_samples.c.host)).all()
        rollups = conn.execute(select(func.count()).select_from(gpu_rollups_1m)).scalar()
    assert dict(hosts) == {"h1": 1, "other": 1}
    assert rollups == 2
