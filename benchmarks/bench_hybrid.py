"""What the hybrid optimum and the measured capacity add to `campwatch cost` over a 90-day, 8-GPU history.

    .venv/bin/python -m benchmarks.bench_hybrid [--days 90] [--gpus 8] [--scrape-s 60] [--raw-days 7]

Data: one host, one engine series scraped every `scrape-s` seconds (as in bench_cost_quarter.py)
with TTFT and inter-token histograms, waiting requests and the generation counter, stored in a
temporary SQLite database; an hourly demand series of the same length. Baseline (same run): reading
those engine rows with a bare SELECT. Measured: load_readings (the report's query) + load_windows +
estimate_capacity over the whole history and over the default cost.capacity_days (14), and
hybrid_optimum for 4 baselines. Then the history is rolled up and raw retention applied
(`--raw-days`, default 7): the capacity over the default 14 days and over the whole history, read
from the rollups where the raw rows are gone."""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, func, insert, select

from agent.cost.capacity import ITL, TTFT, Slo, estimate_capacity, load_windows
from agent.cost.hybrid import HybridCosts, hybrid_optimum
from agent.cost.queries import load_readings
from agent.cost.report import capacity_windows
from agent.store.db import open_engine
from agent.store.maintenance import maintain
from agent.store.schema import engine_samples, metadata

T0 = datetime(2026, 7, 1, tzinfo=UTC)
BOUNDS = {TTFT: (0.25, 0.5, 1.0, 2.5, 5.0, 10.0), ITL: (0.01, 0.025, 0.05, 0.1, 0.25, 0.5)}


def populate(url: str, days: int, step: float) -> int:
    engine = open_engine(url)
    metadata.create_all(engine)
    n = int(days * 86400 / step)
    counts = {name: [0.0] * (len(b) + 1) for name, b in BOUNDS.items()}
    generated = 0.0
    batch: list[dict[str, object]] = []
    with engine.begin() as conn:
        for i in range(n):
            hour = (i * step / 3600) % 24
            busy = 9 <= hour < 18
            rate = 8 * 1000.0 * (1.0 if busy else 0.3)
            generated += rate * step
            counts[TTFT][2 if busy else 1] += 50
            counts[ITL][2 if busy else 1] += 5000
            hist = {name: {"buckets": [[le, sum(c[:j + 1])] for j, le in enumerate(BOUNDS[name])]
                           + [["+Inf", sum(c)]], "sum": 0.0, "count": sum(c)} for name, c in counts.items()}
            batch.append({"ts": T0 + timedelta(seconds=i * step), "host": "h1", "server": "s", "kind": "vllm",
                          "model": "m", "engine": "0", "up": True, "simulated": False,
                          "generation_tokens_total": generated, "requests_waiting": 4.0 if busy else 0.0,
                          "histograms": json.dumps(hist)})
            if len(batch) >= 5000:
                conn.execute(insert(engine_samples), batch)
                batch = []
        if batch:
            conn.execute(insert(engine_samples), batch)
    engine.dispose()
    return n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--scrape-s", type=float, default=60.0)
    parser.add_argument("--raw-days", type=float, default=7.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        rows = populate(url, args.days, args.scrape_s)
        engine = open_engine(url)
        end = T0 + timedelta(days=args.days)
        t = engine_samples.c
        start = time.perf_counter()
        with engine.connect() as conn:
            bare = conn.execute(select(t.ts, t.up, t.generation_tokens_total, t.requests_waiting, t.histograms)
                                .where(t.host == "h1", t.ts >= T0, t.ts < end)).all()
        base = time.perf_counter() - start
        start = time.perf_counter()
        with engine.connect() as conn:
            readings = load_readings(conn, "h1", T0, end, 300.0, 1.0)
        read = time.perf_counter() - start
        since = end - timedelta(days=14)
        start = time.perf_counter()
        with engine.connect() as conn:
            recent = load_readings(conn, "h1", since, end, 300.0, 1.0)
        recent_cap = estimate_capacity("h1", load_windows(recent, 300.0, 1.0), args.gpus, Slo(2.0, 0.2))
        default = time.perf_counter() - start
        start = time.perf_counter()
        capacity = estimate_capacity("h1", load_windows(readings, 300.0, 1.0), args.gpus, Slo(2.0, 0.2))
        estimate = time.perf_counter() - start
        hours = args.days * 24
        demand = [8 * 3600 * 1000.0 * (1.0 if 9 <= h % 24 < 18 else 0.3) * (1 + 0.1 * math.sin(h)) for h in
                  range(hours)]
        costs = HybridCosts(Decimal("2628"), Decimal("730"), Decimal("0.00000002"), Decimal("21024"))
        start = time.perf_counter()
        for price in ("0.0000025", "0.00001", "0.000003", "0.0000004"):
            hybrid_optimum("b", demand, (capacity.tokens_per_s_per_gpu or 1000.0) * 4, Decimal(price), costs)
        hybrid = time.perf_counter() - start
        added = read + estimate + hybrid
        print(f"data: {rows:,} engine rows ({args.days} days, one scrape per {args.scrape_s:g} s), {hours:,} demand "
              f"hours, {args.gpus} GPUs (SQLite); {len(bare):,} rows read")
        print(f"baseline: bare SELECT of those engine rows        {base:6.2f} s  (1.00x)")
        print(f"load_readings (the report's query)               {read:6.2f} s  ({read / base:.2f}x)")
        print(f"load_windows + estimate_capacity                 {estimate:6.2f} s  ({estimate / base:.2f}x)")
        print(f"hybrid_optimum, 4 baselines x {hours:,} hours      {hybrid:6.3f} s  ({hybrid / base:.3f}x)")
        print(f"default lookback (cost.capacity_days=14): read + estimate {default:6.2f} s  "
              f"({default / base:.2f}x; target <= 1 s); {len(recent):,} rows, estimate "
              f"{recent_cap.tokens_per_s_per_gpu or 0:,.0f} tok/s/GPU")
        print(f"whole 90 days: added to campwatch cost {added:6.2f} s; estimate "
              f"{capacity.tokens_per_s_per_gpu or 0:,.0f} tok/s/GPU from {capacity.windows:,} windows")
        beyond_retention(engine, end, args.gpus, args.raw_days, hybrid)


def beyond_retention(engine: Engine, end: datetime, gpus: int, raw_days: float, hybrid: float) -> None:
    """The same history after rollup and raw retention: the capacity reads the rollups for the
    part of its lookback older than the raw rows (report.capacity_windows)."""
    start = time.perf_counter()
    maintain(engine, "h1", raw_days=raw_days, rollup_days=400, now=end)
    rolled = time.perf_counter() - start
    with engine.connect() as conn:
        raw_left = conn.execute(select(func.count()).select_from(engine_samples)).scalar() or 0
    print(f"after roll_up + retention (raw {raw_days:g} days, {raw_left:,} raw rows left; maintenance "
          f"{rolled:.1f} s, not part of campwatch cost):")
    for days in (14, (end - T0).days):
        start = time.perf_counter()
        with engine.connect() as conn:
            windows = capacity_windows(conn, "h1", end - timedelta(days=days), end, 300.0, 1.0)
        capacity = estimate_capacity("h1", windows, gpus, Slo(2.0, 0.2))
        took = time.perf_counter() - start
        print(f"  capacity over {days:>3} days (rollups + raw) + hybrid   {took + hybrid:6.2f} s  "
              f"(target <= 1 s for the default 14); estimate {capacity.tokens_per_s_per_gpu or 0:,.0f} tok/s/GPU "
              f"from {capacity.windows:,} windows")


if __name__ == "__main__":
    main()
