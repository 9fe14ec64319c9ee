"""`campwatch cost --quarter` on a fleet history: the agent's first measuring pass, then the report
(read only, priced from the stored measures) against the time to merely read the raw rows.

    .venv/bin/python -m benchmarks.bench_cost_quarter [--days 90] [--gpus 8] [--no-postgres]

Data: agent.sim.history (GPU and engine samples once a minute, Azure-trace request sizes, request
records for the last 14 days, 12 an hour), `--gpus` GPUs on one host. Targets (issue 15): the
report <= 2 s after the first run, the first run <= 30 s."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, text

from agent.config import CostSettings, PricingSettings
from agent.cost.ledger import refresh_ledger
from agent.cost.report import build_report
from agent.periods import quarter_period
from agent.sim.history import HistoryPlan, seed_history
from agent.store.db import open_store
from agent.store.schema import engine_samples, gpu_samples, request_records
from tests.support.db import PG_ADMIN_URL, pg_database

END = datetime(2026, 10, 1, tzinfo=UTC)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(url: str, label: str, days: int, gpus: int) -> None:
    engine = open_store(url, upgrade=True)
    seeded = timed(lambda: seed_history(engine, HistoryPlan(host="fleet-h1", days=days, end=END, gpus=gpus,
                                                            agent_jobs=False)))
    settings = CostSettings(pricing=PricingSettings(gpu_hourly_usd=Decimal("2.5")),
                            overhead_usd_per_month=Decimal(4000))
    quarter = quarter_period("2026Q3")

    def read_raw() -> None:
        with engine.connect() as conn:
            for t in (gpu_samples, engine_samples, request_records):
                conn.execute(select(t).where(t.c.ts >= quarter.start, t.c.ts < quarter.end).order_by(t.c.ts)).all()

    def report() -> None:
        build_report(engine, settings, start=quarter.start, end=quarter.end, now=END, period_label=quarter.label)

    base = min(timed(read_raw) for _ in range(2))
    in_memory = timed(report)  # nothing stored yet: a read-only report measures every hour in memory
    first = timed(lambda: refresh_ledger(engine, settings, quarter.start, END))  # the agent's first pass
    again = min(timed(report) for _ in range(3))
    changed = settings.model_copy(update={"overhead_usd_per_month": Decimal(0)})
    repriced = timed(lambda: build_report(engine, changed, start=quarter.start, end=quarter.end, now=END))
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                  for t in ("gpu_samples", "engine_samples", "request_records", "cost_hours", "cost_request_groups")}
    print(f"[{label}] {days} days, {gpus} GPUs (seeded in {seeded:.0f} s): {counts}")
    print(f"[{label}] baseline: read the quarter's raw rows          {base:7.2f} s  (1.00x)")
    print(f"[{label}] report, nothing stored (measured in memory)  {in_memory:7.2f} s  ({in_memory / base:.2f}x)")
    print(f"[{label}] first run: agent stores the quarter's measures {first:7.2f} s  ({first / base:.2f}x)")
    print(f"[{label}] cost --quarter 2026Q3 after the first run     {again:7.2f} s  ({again / base:.2f}x)")
    print(f"[{label}] same, settings changed (all hours repriced)   {repriced:7.2f} s  ({repriced / base:.2f}x)")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite", args.days, args.gpus)
    if args.no_postgres:
        return
    with contextlib.ExitStack() as stack:
        try:
            pg_url = stack.enter_context(pg_database(PG_ADMIN_URL, prefix="campwatch_bench"))
        except Exception as exc:  # the PostgreSQL half is optional
            print(f"[postgresql] skipped: {exc.__class__.__name__}")
            return
        run(pg_url, "postgresql", args.days, args.gpus)


if __name__ == "__main__":
    main()

