"""Cost engine benchmark: ledger recomputation and the report against the time to merely read the
same raw rows, and grouped API pricing against genai-prices called once per request.

    .venv/bin/python -m benchmarks.bench_cost [--hours 3] [--gpus 8]

Data: one host, N GPUs sampled at 1 Hz, one engine scraped every 5 s, and the Azure conversation
trace (agent/sim/data, CC-BY 4.0, Patel et al., Splitwise, ISCA 2024) replayed as proxy records
once per hour."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from genai_prices import Usage, calc_price
from sqlalchemy import insert, select

from agent.config import BaselineSettings, CostSettings, PricingSettings
from agent.cost.baselines import TokenUsage, price_usages, resolve_baselines
from agent.cost.ledger import recompute_ledger
from agent.cost.report import build_report
from agent.sim.trace import load_trace
from agent.store.db import open_engine
from agent.store.schema import engine_samples, gpu_samples, metadata, request_records

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
def trace() -> list[tuple[float, int, int]]:
    return [(r.offset_s, r.context_tokens, r.generated_tokens) for r in load_trace()]


def populate(url: str, hours: int, gpus: int) -> int:
    engine = open_engine(url)
    metadata.create_all(engine)
    seconds = hours * 3600
    hist = json.dumps({"request_prompt_tokens": {"buckets": [[1000, 10], [10000, 20], ["+Inf", 20]],
                                                 "sum": 20000, "count": 20}})
    with engine.begin() as conn:
        batch = []
        for s in range(seconds + 1):
            for g in range(gpus):
                batch.append({"ts": T0 + timedelta(seconds=s), "host": "h1", "gpu_index": g, "uuid": f"GPU-{g}",
                              "model": "H100", "up": True, "simulated": False, "utilization_ratio": 0.6,
                              "energy_joules_total": 500.0 * s})
            if len(batch) >= 20_000:
                conn.execute(insert(gpu_samples), batch)
                batch = []
        if batch:
            conn.execute(insert(gpu_samples), batch)
        conn.execute(insert(engine_samples), [
            {"ts": T0 + timedelta(seconds=s), "host": "h1", "server": "s", "kind": "vllm", "model": "m", "engine": "0",
             "up": True, "simulated": False, "prompt_tokens_total": 1000.0 * s, "generation_tokens_total": 200.0 * s,
             "histograms": hist} for s in range(0, seconds + 1, 5)])
        records = [{"ts": T0 + timedelta(hours=h, seconds=off), "host": "h1", "request_id": f"{h}-{i}",
                    "upstream": "u", "route": "/v1/chat/completions", "method": "POST", "model": "m", "status": 200,
                    "stream": False, "caller": "b", "prompt_tokens": p, "completion_tokens": g, "cached_tokens": 0,
                    "latency_seconds": 0.1, "chunks": 1, "json_requested": False, "simulated": False}
                   for h in range(hours) for i, (off, p, g) in enumerate(trace()) if off < 3600]
        conn.execute(insert(request_records), records)
    engine.dispose()
    return len(records)


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=int, default=3)
    parser.add_argument("--gpus", type=int, default=8)
    args = parser.parse_args()
    settings = CostSettings(pricing=PricingSettings(gpu_hourly_usd=Decimal("2.5")),
                            overhead_usd_per_month=Decimal(5000))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        n_records = populate(url, args.hours, args.gpus)
        engine = open_engine(url)
        end = T0 + timedelta(hours=args.hours)

        def read_raw() -> None:
            with engine.connect() as conn:
                for t in (gpu_samples, engine_samples, request_records):
                    conn.execute(select(t).where(t.c.host == "h1", t.c.ts >= T0, t.c.ts < end).order_by(t.c.ts)).all()

        base = min(timed(read_raw) for _ in range(2))
        full = timed(lambda: recompute_ledger(engine, settings, T0, end, "h1"))
        again = timed(lambda: recompute_ledger(engine, settings, T0, end, "h1"))
        last_hour = timed(lambda: recompute_ledger(engine, settings, end - timedelta(minutes=1), end, "h1"))
        report = timed(lambda: build_report(engine, settings, timedelta(hours=args.hours), "h1", now=end))
        gpu_rows = args.gpus * (args.hours * 3600 + 1)
        print(f"data: {gpu_rows:,} GPU rows ({args.gpus} GPUs at 1 Hz), {args.hours * 720 + 1:,} engine rows, "
              f"{n_records:,} proxy records over {args.hours} h (SQLite)")
        print(f"baseline: read those raw rows                  {base:7.2f} s  (1.00x)")
        print(f"recompute the ledger, first time               {full:7.2f} s  ({full / base:.2f}x)")
        print(f"recompute the ledger, again (idempotent)       {again:7.2f} s  ({again / base:.2f}x)")
        print(f"recompute the last hour (what the runner does) {last_hour:7.2f} s  ({last_hour / base:.2f}x)")
        print(f"build_report over the window (ledger current)  {report:7.2f} s  ({report / base:.2f}x)")
        print(f"per raw hour: {full / args.hours:.2f} s to recompute ({full / args.hours / 3600 * 100:.3f} % "
              "of the hour it covers)")
        engine.dispose()

    requests = trace()
    sonnet = resolve_baselines(CostSettings(baselines=(BaselineSettings(provider="anthropic",
                                                                        model="claude-sonnet-4-5"),)))[0]
    items = [(T0 + timedelta(seconds=o), TokenUsage(p, g)) for o, p, g in requests]
    grouped = min(timed(lambda: price_usages(sonnet, items)) for _ in range(3))
    per_request = timed(lambda: [calc_price(Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens),
                                            "claude-sonnet-4-5", provider_id="anthropic",
                                            genai_request_timestamp=ts) for ts, u in items])
    print(f"pricing {len(items):,} Azure requests on claude-sonnet-4-5: calc_price per request {per_request:.2f} s "
          f"(1.00x), grouped by price and tier {grouped:.3f} s ({per_request / grouped:.0f}x faster, same total)")


if __name__ == "__main__":
    main()
