"""Store benchmark: bytes per GPU-day of 1 Hz samples on SQLite, and write throughput on SQLite and
PostgreSQL through the real StoreWriter (one transaction per flush).

    .venv/bin/python -m benchmarks.bench_store [--pg postgresql+psycopg://postgres@127.0.0.1/postgres]
    .venv/bin/python -m benchmarks.bench_store --ingest-only     # the ingest ratios alone (about 1 min)

Ingest ratios (issue 14): the same GPU rows written through the store's own writer (its flushes:
the batch's transaction, its bulk insert, its spool marker; offer(), which encodes each row once
on the producer's side, is timed apart and printed in us/row) against the floor of each backend measured in
the same run on the same table: psycopg 3 COPY ... FROM STDIN of the already-encoded tuples, and a
single-transaction sqlite3 executemany (same WAL/synchronous pragmas) of the tuples with their
timestamps already converted to SQLAlchemy's text form (the strictest floor: no conversion at all),
and of the same tuples as they are (sqlite3's default datetime adapter converts them).
One flush of all rows, and flushes of 600 rows (a busy sidecar's second) against the floor in
600-row transactions. 3 repetitions, min/median of the rows/s ratio.
Targets: PostgreSQL >= 0.9x COPY, SQLite >= 0.9x executemany.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import Engine, create_engine, func, select, text

from agent.concepts.gpu import GPU_STORED_FIELDS
from agent.samples import GpuSample
from agent.store.db import open_engine, open_store
from agent.store.maintenance import maintain
from agent.store.rows import encode
from agent.store.schema import gpu_rollups_1m, gpu_samples
from agent.store.writer import StoreWriter
from agent.telemetry import Telemetry
from tests.support.db import pg_database

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
    engine = open_store(url, upgrade=True)
    writer = StoreWriter(engine, Telemetry("bench-host"), queue_max_rows=batch * 2)
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        writer.offer(rows[i:i + batch])
        writer.flush()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


INGEST_ROWS = 60_000
INGEST_REPS = 5
"""Repetitions; the writer and its floor take turns going first (the table's state after DELETE differs)."""


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(i + size, n)) for i in range(0, n, size)]


OFFER_US: list[float] = []
"""Microseconds per row that offer() took (encoding, on the producer's thread), per writer run."""


def _writer_rate(engine: Engine, rows: list[GpuSample], size: int) -> float:
    """Rows/s of the writer's flushes (what runs on its thread); offer() is timed apart."""
    with engine.begin() as conn:
        conn.execute(gpu_samples.delete())
    writer = StoreWriter(engine, Telemetry("bench-host"), queue_max_rows=len(rows) * 2)
    flushing = offering = 0.0
    for lo, hi in _chunks(len(rows), size):
        started = time.perf_counter()
        writer.offer(rows[lo:hi])
        offered = time.perf_counter()
        writer.flush()
        flushing += time.perf_counter() - offered
        offering += offered - started
    OFFER_US.append(offering / len(rows) * 1e6)
    return len(rows) / flushing


def _copy_rate(pg_url: str, tuples: list[tuple[object, ...]], columns: tuple[str, ...], size: int) -> float:
    import psycopg

    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("DELETE FROM gpu_samples")
        conn.commit()
        statement = f"COPY gpu_samples ({', '.join(columns)}) FROM STDIN"
        started = time.perf_counter()
        for lo, hi in _chunks(len(tuples), size):
            with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
                for values in tuples[lo:hi]:
                    copy.write_row(values)
        return len(tuples) / (time.perf_counter() - started)


def _executemany_rate(path: Path, tuples: list[tuple[object, ...]], columns: tuple[str, ...], size: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("DELETE FROM gpu_samples")
        statement = f"INSERT INTO gpu_samples ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        started = time.perf_counter()
        for lo, hi in _chunks(len(tuples), size):
            conn.execute("BEGIN")
            conn.executemany(statement, tuples[lo:hi])
            conn.execute("COMMIT")
        return len(tuples) / (time.perf_counter() - started)
    finally:
        conn.close()


def _taking_turns(rep: int, writer: Callable[[], float], *floors: Callable[[], float]) -> tuple[float, ...]:
    """One repetition, (writer, *floors) rows/s: the writer goes first on even repetitions, last on odd ones."""
    if rep % 2:
        measured = [floor() for floor in floors]
        return writer(), *measured
    first = writer()
    return first, *(floor() for floor in floors)


def _ratio_line(name: str, floor: str, pairs: list[tuple[float, float]]) -> str:
    ratios = [w / f for w, f in pairs]
    return (f"{name}: writer {statistics.median(w for w, _ in pairs):,.0f} rows/s, {floor} "
            f"{statistics.median(f for _, f in pairs):,.0f} rows/s (medians); ratio min {min(ratios):.2f}x, "
            f"median {statistics.median(ratios):.2f}x  [{', '.join(f'{r:.2f}' for r in ratios)}]")


def ingest(pg_admin: str) -> None:
    rows = day_of_samples()[:INGEST_ROWS]
    codec = encode(rows[0])[0]
    columns = codec.columns
    tuples = [encode(r)[1] for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ingest.db"
        engine = open_store(f"sqlite:///{path}", upgrade=True)
        dialect = engine.dialect
        processors = [gpu_samples.c[name].type._cached_bind_processor(dialect) for name in columns]
        converted = [tuple(v if p is None or v is None else p(v) for v, p in zip(t, processors, strict=True))
                     for t in tuples]
        for size, label in ((len(rows), "one flush"), (600, "600-row flushes")):
            triples = [_taking_turns(rep, partial(_writer_rate, engine, rows, size),
                                     partial(_executemany_rate, path, converted, columns, size),
                                     partial(_executemany_rate, path, tuples, columns, size))
                       for rep in range(INGEST_REPS)]
            print(_ratio_line(f"SQLite ingest, {len(rows):,} GPU rows, {label}",
                              "sqlite3 executemany of pre-converted tuples", [(w, f) for w, f, _ in triples]))
            print(_ratio_line(f"SQLite ingest, {len(rows):,} GPU rows, {label}",
                              "sqlite3 executemany of the same tuples (sqlite3 adapts the datetimes)",
                              [(w, f) for w, _, f in triples]))
        engine.dispose()
    with contextlib.ExitStack() as stack:
        try:
            pg_url = stack.enter_context(pg_database(pg_admin, prefix="campwatch_bench"))
        except Exception as exc:
            print(f"PostgreSQL ingest: skipped ({exc.__class__.__name__}: not reachable at {pg_admin})")
            return
        engine = open_store(pg_url, upgrade=True)
        for size, label in ((len(rows), "one flush"), (600, "600-row flushes")):
            pairs = [_taking_turns(rep, partial(_writer_rate, engine, rows, size),
                                   partial(_copy_rate, pg_url, tuples, columns, size))
                     for rep in range(INGEST_REPS)]
            print(_ratio_line(f"PostgreSQL ingest, {len(rows):,} GPU rows, {label}", "psycopg COPY",
                              [(w, f) for w, f in pairs]))
        engine.dispose()
        print(f"offer() (encoding, producer side): median {statistics.median(OFFER_US):.1f} us/row")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--ingest-only", action="store_true", help="only the ingest ratios against COPY/executemany")
    args = parser.parse_args()
    ingest(args.pg)
    if args.ingest_only:
        return
    rows = day_of_samples()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        open_store(url, upgrade=True).dispose()
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
    with contextlib.ExitStack() as stack:
        try:
            pg_url = stack.enter_context(pg_database(args.pg, prefix="campwatch_bench"))
        except Exception as exc:
            print(f"PostgreSQL: skipped ({exc.__class__.__name__}: not reachable at {args.pg})")
            return
        elapsed = write_all(pg_url, rows[: DAY // 4], batch=600)
        print(f"PostgreSQL: write throughput {DAY // 4 / elapsed:,.0f} rows/s (same writer, same batches)")
        engine = create_engine(pg_url)
        with engine.connect() as conn:
            size = conn.execute(text("select pg_total_relation_size('gpu_samples')")).scalar()
        engine.dispose()
        print(f"PostgreSQL: {int(size or 0) * 4 / 1e6:.1f} MB per GPU-day (table + indexes, extrapolated x4)")


if __name__ == "__main__":
    main()
