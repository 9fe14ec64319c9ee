"""Store benchmark: bytes per GPU-day of 1 Hz samples on SQLite, and write throughput on SQLite and
PostgreSQL through the real StoreWriter (one transaction per flush).

    .venv/bin/python benchmarks/bench_store.py [--pg postgresql+psycopg://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from agent.samples import GpuSample
from agent.store.db import open_engine
from agent.store.maintenance import maintain
from agent.store.migrate import upgrade
from agent.store.schema import GPU_STORED_FIELDS, gpu_rollups_1m
from agent.store.writer import StoreWriter
from agent.telemetry import Telemetry

DAY = 86_400
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def day_of_samples(gpu: int = 0) -> list[GpuSample]:
    rng = random.Random(gpu)
    energy = 0.0
    out = []
    for second in range(DAY):
        util = min(1.0, max(0.0, 0.6 + rng.gauss(0, 0.2)))
        power = 70 + 630 * util
        energy += power
        values = {name: rng.random() * 100 for name in GPU_STORED_FIELDS}
        values.update({"utilization_ratio": util, "power_watts": power, "energy_joules_total": energy,
                       "memory_used_bytes": 7.2e10, "memory_total_bytes": 8.5e10})
        out.append(GpuSample(ts=T0 + timedelta(seconds=second), host="bench-host", gpu_index=gpu,
                             uuid=f"GPU-{gpu:08d}-bench", model="NVIDIA H100 80GB HBM3", up=True, values=values))
    return out


def write_all(url: str, rows: list[GpuSample], batch: int) -> float:
    engine = open_engine(url)
    upgrade(engine)
    writer = StoreWriter(engine, Telemetry("bench-host"), queue_max_rows=batch * 2)
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        writer.offer(rows[i:i + batch])
        writer.flush()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    rows = day_of_samples()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        upgrade(open_engine(url))
        empty = path.stat().st_size
        elapsed = write_all(url, rows, batch=600)
        engine = open_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        raw_bytes = path.stat().st_size - empty
        maintain(engine, "bench-host", raw_days=7, rollup_days=400, now=T0 + timedelta(days=1))
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            rollups = conn.execute(select(func.count()).select_from(gpu_rollups_1m)).scalar()
        with_rollups = path.stat().st_size - empty
        engine.dispose()
    print(f"SQLite: one GPU-day of 1 Hz samples ({DAY:,} rows, {len(GPU_STORED_FIELDS)} value columns, "
          f"indexes included): {raw_bytes / 1e6:.1f} MB = {raw_bytes / DAY:.0f} bytes/sample")
    print(f"SQLite: + {rollups:,} one-minute rollup rows: {(with_rollups - raw_bytes) / 1e6:.2f} MB "
          f"({(with_rollups - raw_bytes) / max(rollups or 1, 1):.0f} bytes/rollup row)")
    print(f"SQLite: write throughput {DAY / elapsed:,.0f} rows/s (flushes of 600 rows, WAL, synchronous=NORMAL)")
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    name = f"campwatch_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(f"PostgreSQL: skipped ({exc.__class__.__name__}: not reachable at {args.pg})")
        return
    try:
        pg_url = args.pg.rsplit("/", 1)[0] + f"/{name}"
        elapsed = write_all(pg_url, rows[: DAY // 4], batch=600)
        print(f"PostgreSQL: write throughput {DAY // 4 / elapsed:,.0f} rows/s (same writer, same batches)")
        engine = create_engine(pg_url)
        with engine.connect() as conn:
            size = conn.execute(text("select pg_total_relation_size('gpu_samples')")).scalar()
        engine.dispose()
        print(f"PostgreSQL: {int(size or 0) * 4 / 1e6:.1f} MB per GPU-day (table + indexes, extrapolated x4)")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
