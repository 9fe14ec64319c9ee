"""Memory per queued row and CPU of a failing flush: the writer's queue (compact value tuples,
converted once, at offer) against the previous design measured in the same run (the samples
themselves queued, and every flush converting the whole queue to dicts again).

    .venv/bin/python -m benchmarks.bench_store_queue [--rows 50000]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.exc import SQLAlchemyError

from agent.samples import GpuSample
from agent.store.db import open_engine
from agent.store.rows import to_row
from agent.store.writer import StoreWriter
from agent.telemetry import Telemetry
from benchmarks.bench_store import day_of_samples


def _held_bytes(build: object) -> int:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()  # type: ignore[operator]
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return after - before


def _previous_flush(engine: Engine, samples: list[GpuSample]) -> None:
    """What the previous writer did each second while the store failed."""
    grouped: dict[Table, list[dict[str, Any]]] = defaultdict(list)
    for item in samples:
        table, row = to_row(item)
        grouped[table].append(row)
    try:
        with engine.begin() as conn:
            for table, rows in grouped.items():
                conn.execute(table.insert(), rows)
    except SQLAlchemyError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    n = args.rows
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(f"sqlite:///{Path(tmp) / 'unmigrated.db'}")  # every insert fails

        def old_queue() -> object:
            # the previous writer queued the samples and converted all of them at each flush
            queue = deque(day_of_samples()[:n])
            return queue, [to_row(item) for item in queue]

        def new_queue() -> object:
            writer = StoreWriter(engine, Telemetry("bench-host"), queue_max_rows=n * 2)
            writer.offer(day_of_samples()[:n])
            return writer

        old_bytes = _held_bytes(old_queue) / n
        new_bytes = _held_bytes(new_queue) / n
        print(f"queued GPU row (17 value columns), {n:,} rows: previous {old_bytes:,.0f} bytes/row "
              f"(samples + the per-flush dicts), now {new_bytes:,.0f} bytes/row "
              f"({old_bytes / new_bytes:.1f}x less)")

        samples = day_of_samples()[:n]
        started = time.process_time()
        _previous_flush(engine, samples)
        old_cpu = time.process_time() - started
        writer = StoreWriter(engine, Telemetry("bench-host"), queue_max_rows=n * 2)
        writer.offer(samples)
        writer.flush()  # the first failure: the whole batch is tried once
        attempts = []
        for _ in range(5):  # later attempts while the store still fails (1, 2, 4, 8, 16 s apart)
            started = time.process_time()
            writer.flush()
            attempts.append(time.process_time() - started)
        new_cpu = sum(attempts) / len(attempts)
        print(f"failing flush with {n:,} rows queued: previous {old_cpu * 1000:.0f} ms CPU every second "
              f"(re-converting and re-sending the queue: {old_cpu:.1f} cores); now {new_cpu * 1000:.1f} ms "
              f"per retry ({old_cpu / max(new_cpu, 1e-9):,.0f}x less), retries 1, 2, 4 ... 30 s apart, "
              "and none once the queue is in the spool")
        engine.dispose()


if __name__ == "__main__":
    main()
