"""Drift check cost: Evidently on 5,000 vs 5,000 request descriptor rows and on 500 vs 500 captured
texts, and the worker child's wall time and peak RSS. Figures are printed as ratios against baselines
measured in the same run: the SQL load of the same windows, and a bare spawned child.

    .venv/bin/python -m benchmarks.bench_drift
"""

from __future__ import annotations

import multiprocessing
import resource
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from agent.config import DriftSettings
from agent.drift.check import DEFAULT_REFUSAL_PHRASES
from agent.drift.features import RECORD_FEATURES
from agent.drift.loader import load_records, load_texts
from agent.drift.worker import DriftWorker
from agent.store.db import open_engine
from agent.store.rows import insert_rows
from agent.store.schema import metadata
from tests.support.traffic import (
    HOST,
    MODEL,
    NOW,
    TOPIC_A,
    TOPIC_B,
    Traffic,
    make_records,
    make_texts,
)

N_RECORDS = 5000
N_TEXTS = 500
SETTINGS = DriftSettings(reference_days=1, current_hours=2, min_rows=100, max_rows=N_RECORDS)
COLUMNS = tuple(dict.fromkeys(f.column for f in RECORD_FEATURES))


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _bare_child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import agent.drift.check  # noqa: F401  (what the worker child loads before Evidently)

    queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def _bare_child_cost() -> tuple[float, int]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    started = time.perf_counter()
    process = ctx.Process(target=_bare_child, args=(queue,))
    process.start()
    rss = int(queue.get(timeout=120))
    process.join()
    return time.perf_counter() - started, rss


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    url = f"sqlite:///{folder / 'campwatch.db'}"
    engine = open_engine(url)
    metadata.create_all(engine)
    cur_start = NOW - timedelta(hours=SETTINGS.current_hours)
    ref_start = cur_start - timedelta(days=SETTINGS.reference_days)
    insert_rows(engine, make_records(N_RECORDS, ref_start, cur_start, Traffic(), seed=1)
           + make_records(N_RECORDS, cur_start, NOW, Traffic().shifted(), seed=2))
    insert_rows(engine, make_texts(N_TEXTS, ref_start, cur_start, TOPIC_A + TOPIC_B, seed=3)
           + make_texts(N_TEXTS, cur_start, NOW, TOPIC_B, seed=4))

    started = time.perf_counter()
    ref = load_records(engine, HOST, MODEL, ref_start, cur_start, COLUMNS, SETTINGS.max_rows)
    cur = load_records(engine, HOST, MODEL, cur_start, NOW, COLUMNS, SETTINGS.max_rows)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    ref_t = load_texts(engine, HOST, MODEL, ref_start, cur_start, NOW, SETTINGS.max_rows)
    cur_t = load_texts(engine, HOST, MODEL, cur_start, NOW, NOW, SETTINGS.max_rows)
    load_texts_s = time.perf_counter() - started

    bare_s, bare_rss = _bare_child_cost()
    parent_before = _rss_mib()
    worker = DriftWorker(url, SETTINGS, HOST)
    started = time.perf_counter()
    results = worker.run_once(now=NOW)
    worker_s = time.perf_counter() - started
    parent_after = _rss_mib()
    child_rss = worker.last_peak_rss_bytes or 0

    started = time.perf_counter()
    from agent.drift import compute

    import_s = time.perf_counter() - started
    started = time.perf_counter()
    records = compute.record_drift(ref, cur, RECORD_FEATURES, SETTINGS.min_rows)
    records_s = time.perf_counter() - started
    started = time.perf_counter()
    texts = compute.text_drift(ref_t, cur_t, DEFAULT_REFUSAL_PHRASES)
    texts_s = time.perf_counter() - started

    print(f"records: {ref.n} vs {cur.n} rows; texts: {ref_t.n} vs {cur_t.n}; "
          f"{len(results)} results, drifted: {sorted(r.feature for r in results if r.drifted)}")
    print(f"baseline  SQL load of both record windows      {load_s * 1000:8.1f} ms")
    print(f"baseline  SQL load of both text windows        {load_texts_s * 1000:8.1f} ms")
    print(f"evidently import (in process)                  {import_s:8.2f} s")
    print(f"record drift {N_RECORDS} vs {N_RECORDS} ({len(records.tested)} features)    "
          f"{records_s:8.2f} s  = {records_s / load_s:6.1f} x the SQL load")
    print(f"text drift {N_TEXTS} vs {N_TEXTS} ({len(texts.tested)} features)          "
          f"{texts_s:8.2f} s  = {texts_s / load_texts_s:6.0f} x the SQL load")
    print(f"baseline  bare spawned child (imports agent.drift.check)  {bare_s:6.2f} s, "
          f"peak RSS {bare_rss / 2**20:6.0f} MiB")
    print(f"worker run_once, end to end (spawn + import + both + write) {worker_s:6.2f} s "
          f"= {worker_s / bare_s:5.1f} x the bare child")
    print(f"worker child peak RSS                          {child_rss / 2**20:6.0f} MiB "
          f"= {child_rss / bare_rss:5.1f} x the bare child")
    print(f"agent (parent) RSS before / after the worker run {parent_before:6.0f} / {parent_after:6.0f} MiB")
    engine.dispose()


if __name__ == "__main__":
    main()
