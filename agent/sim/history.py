"""A simulated history written the way the running agent would have written it: GPU and engine
samples once a minute (raw rows), rolled up by the store's own rollup code, hourly cost measures by
the cost ledger's own code, and drift results by the drift check itself, day by day. Load follows
a business-hours and weekly pattern with monthly growth, modulated minute by minute by the arrival
pattern of the real Azure trace (which covers one hour, replayed cyclically), with request sizes
drawn from that trace; per-request records for the last days carry an output shift (the planted
drift event) unless `drift_last_days` is 0. Every row is marked simulated."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine

from agent.samples import EngineSample, GpuSample, HistogramSnapshot, RequestRecord
from agent.sim.trace import TraceRequest, load_trace
from agent.sim.vllm_metrics import token_buckets
from agent.store.rows import insert_rows

MODEL = "simulated/llama-3.1-8b-instruct"
SERVER = "http://127.0.0.1:8000/metrics"

Progress = Callable[[int, int], None]
"""progress(days done, days in all)."""


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    host: str = "simulated-history"
    days: int = 92
    end: datetime | None = None
    gpus: int = 1
    peak_requests_per_minute: float = 240.0
    growth_per_month: float = 0.10
    request_record_days: int = 14
    requests_per_hour_recorded: int = 12
    drift_last_days: float = 2.0
    """The planted drift event starts this long before the end; 0 plants none."""
    drift_checks: bool = True
    """Run the drift check once a day over the recorded days (storing its results), as the agent would."""
    agent_jobs: bool = True
    """Run the agent's jobs after each day (rollups, cost measures, drift checks); False writes raw
    rows only (benchmarks/bench_cost_quarter.py times those jobs itself)."""
    seed: int = 7

    @property
    def drift_start(self) -> datetime | None:
        if self.drift_last_days <= 0:
            return None
        return history_end(self) - timedelta(days=self.drift_last_days)


def history_end(plan: HistoryPlan) -> datetime:
    return (plan.end or datetime.now(UTC)).replace(second=0, microsecond=0)


def _load(minute: datetime, start: datetime, plan: HistoryPlan) -> float:
    """Share of peak traffic at this minute: business-hours peak, quiet weekends, monthly growth."""
    hour = minute.hour + minute.minute / 60
    diurnal = 0.15 + 0.85 * max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.15
    weekly = 0.45 if minute.weekday() >= 5 else 1.0
    months = (minute - start).total_seconds() / (30 * 86400)
    growth = (1.0 + plan.growth_per_month) ** (months - 3.0)
    return float(min(1.0, diurnal * weekly * growth))


def _trace_shape(trace: list[TraceRequest]) -> list[float]:
    """The trace's arrivals per minute relative to its mean: its real minute-to-minute burstiness."""
    minutes = int(trace[-1].offset_s // 60)  # whole minutes only (the last one is partial)
    counts = [0] * max(minutes, 1)
    for req in trace:
        m = int(req.offset_s // 60)
        if m < len(counts):
            counts[m] += 1
    mean = sum(counts) / len(counts)
    return [c / mean for c in counts]


@dataclass(frozen=True, slots=True)
class _Trace:
    context: Any
    generated: Any
    context_bucket: Any
    generated_bucket: Any
    shape: list[float]


def _trace(buckets: tuple[float, ...]) -> tuple[list[TraceRequest], _Trace]:
    requests = list(load_trace())
    context = np.array([r.context_tokens for r in requests], dtype=np.int64)
    generated = np.array([r.generated_tokens for r in requests], dtype=np.int64)
    edges = np.array(buckets, dtype=float)
    # the bucket a value falls in: the first bound >= value (le semantics), len(buckets) = +Inf
    return requests, _Trace(context, generated, np.searchsorted(edges, context, side="left"),
                            np.searchsorted(edges, generated, side="left"), _trace_shape(requests))


def _snapshot(bounds: tuple[float, ...], counts: Any, total: float) -> HistogramSnapshot:
    cumulative = np.cumsum(counts)
    return HistogramSnapshot(tuple(zip((*bounds, math.inf), (float(c) for c in cumulative), strict=True)),
                             float(total), float(cumulative[-1]))


def seed_history(engine: Engine, plan: HistoryPlan, progress: Progress | None = None) -> dict[str, int]:
    """Write the simulated history (the store must be migrated), one day at a time as the agent
    would: raw samples, then the rollups and cost measures of that day, then the day's drift check.
    Returns what was written per kind."""
    from agent.config import CostSettings, DriftSettings
    from agent.cost.ledger import refresh_ledger
    from agent.store.maintenance import roll_up

    rng = np.random.default_rng(plan.seed)
    buckets = token_buckets(8192)
    requests_trace, trace = _trace(buckets)
    end = history_end(plan)
    start = end - timedelta(days=plan.days)
    prompt_counts = np.zeros(len(buckets) + 1)
    gen_counts = np.zeros(len(buckets) + 1)
    prompt_total = gen_total = finished = 0.0
    energy = [0.0] * plan.gpus
    written = {"gpu_samples": 0, "engine_samples": 0, "request_records": 0, "gpu_rollup_minutes": 0,
               "engine_rollup_minutes": 0, "cost_hours": 0, "drift_results": 0, "tokens": 0}
    records_from = end - timedelta(days=plan.request_record_days)
    drift_from = plan.drift_start
    record_every = max(60 // plan.requests_per_hour_recorded, 1)

    pick = random.Random(plan.seed)
    cost_settings, drift_settings = CostSettings(), DriftSettings()
    days = math.ceil((end - start) / timedelta(days=1))
    day_start = start
    for day in range(days):
        day_end = min(day_start + timedelta(days=1), end)
        rows: list[Any] = []
        minute = day_start
        while minute < day_end:
            index = int((minute - start).total_seconds() // 60)
            burst = trace.shape[index % len(trace.shape)]
            load = min(1.0, _load(minute, start, plan) * (0.85 + 0.15 * burst))
            n = max(0, int(rng.normal(plan.peak_requests_per_minute * load, 3)))
            if n:
                chosen = rng.integers(0, len(trace.context), n)
                prompt_counts += np.bincount(trace.context_bucket[chosen], minlength=len(buckets) + 1)
                gen_counts += np.bincount(trace.generated_bucket[chosen], minlength=len(buckets) + 1)
                prompt_total += float(trace.context[chosen].sum())
                gen_total += float(trace.generated[chosen].sum())
            finished += n
            util = min(1.0, 0.05 + 0.9 * load + float(rng.normal(0, 0.03))) if n else 0.0
            for g in range(plan.gpus):
                power = 70.0 + 630.0 * util
                energy[g] += power * 60
                rows.append(GpuSample(ts=minute, host=plan.host, gpu_index=g, uuid=f"GPU-sim-{g:04d}",
                                      model="Simulated H100 80GB HBM3", up=True, simulated=True, values={
                                          "utilization_ratio": max(util, 0.0), "power_watts": power,
                                          "energy_joules_total": energy[g], "memory_used_bytes": 7.6e10,
                                          "memory_total_bytes": 8.5e10, "temperature_celsius": 35 + 40 * util}))
            rows.append(EngineSample(
                ts=minute, host=plan.host, server=SERVER, kind="vllm", model=MODEL, engine="0", up=True,
                simulated=True, values={
                    "prompt_tokens_total": prompt_total, "generation_tokens_total": gen_total,
                    "requests_finished_total": finished, "requests_running": n / 6,
                    "requests_waiting": max(0.0, n - 200) / 10, "kv_cache_usage_ratio": 0.8 * load},
                histograms={"request_prompt_tokens": _snapshot(buckets, prompt_counts, prompt_total),
                            "request_generation_tokens": _snapshot(buckets, gen_counts, gen_total)}))
            if minute >= records_from and minute.minute % record_every == 0:
                rows.append(_record(minute, plan, pick, pick.choice(requests_trace),
                                    drifted=drift_from is not None and minute >= drift_from))
            minute += timedelta(minutes=1)
        insert_rows(engine, rows)
        written["gpu_samples"] += sum(isinstance(r, GpuSample) for r in rows)
        written["engine_samples"] += sum(isinstance(r, EngineSample) for r in rows)
        written["request_records"] += sum(isinstance(r, RequestRecord) for r in rows)
        written["tokens"] = int(prompt_total + gen_total)
        day_start = day_end
        if progress is not None and not plan.agent_jobs:
            progress(day + 1, days)
        if not plan.agent_jobs:
            continue
        gpu_minutes, engine_minutes = roll_up(engine, plan.host, now=day_end)
        written["gpu_rollup_minutes"] += gpu_minutes
        written["engine_rollup_minutes"] += engine_minutes
        written["cost_hours"] += refresh_ledger(engine, cost_settings, start, day_end, plan.host)
        if plan.drift_checks and day_end - records_from >= timedelta(days=drift_settings.reference_days + 1):
            from agent.drift.check import run_drift_check

            written["drift_results"] += len(run_drift_check(engine, drift_settings, plan.host, now=day_end))
        if progress is not None:
            progress(day + 1, days)
    return written


def _record(minute: datetime, plan: HistoryPlan, rng: random.Random, req: TraceRequest, *,
            drifted: bool) -> RequestRecord:
    completion = req.generated_tokens * (2 if drifted else 1)
    refusal = rng.random() < (0.15 if drifted else 0.02)
    json_requested = rng.random() < 0.1
    ttft = 0.05 + req.context_tokens / 40_000 + abs(rng.gauss(0, 0.02))
    return RequestRecord(
        ts=minute, host=plan.host, request_id=uuid.UUID(int=rng.getrandbits(128)).hex, upstream="http://127.0.0.1:8000",
        route="/v1/chat/completions", method="POST", model=MODEL, status=200, stream=True,
        caller=rng.choice(["3f2a9c1e", "b71d0e44", "anonymous"]), prompt_tokens=req.context_tokens,
        completion_tokens=completion, cached_tokens=0, ttft_seconds=ttft,
        latency_seconds=ttft + completion * 0.02, chunks=completion, gap_mean_seconds=0.02,
        gap_p99_seconds=0.05, gap_max_seconds=0.08, finish_reason="stop" if refusal else rng.choice(["stop", "length"]),
        output_chars=completion * (5 if drifted else 4) + rng.randint(0, 20), refusal=refusal,
        json_requested=json_requested,
        json_valid=(rng.random() < (0.7 if drifted else 0.98)) if json_requested else None,
        non_ascii_ratio=abs(rng.gauss(0.08 if drifted else 0.01, 0.01)), simulated=True)


GPU_HOURLY_USD = 2.50
NEW_GPU_HOURLY_USD = 2.10
PLAN_COST_SHARE = 0.97
"""The plan's monthly cost is this share of a 730-hour month at the first price, so every month
billed at that price is over plan and the months after the price change are under it."""


def history_settings_toml(plan: HistoryPlan, tokens: int) -> str:
    """The settings that go with a seeded history (simulated prices, the GPU price change halfway
    through, a plan for each quarter it touches) as TOML, to pass as --config."""
    from agent.periods import quarter_of

    end = history_end(plan)
    start = end - timedelta(days=plan.days)
    change = (start + timedelta(days=plan.days // 2)).date()
    tokens_per_month = int(tokens / plan.days * 730 / 24)
    cost_per_month = round(plan.gpus * 730 * GPU_HOURLY_USD * PLAN_COST_SHARE, 2)
    quarters: list[str] = []
    moments = [start + timedelta(days=d) for d in range(0, plan.days, 28)] + [end - timedelta(seconds=1)]
    for moment in moments:
        label = quarter_of(moment).label
        if label not in quarters:
            quarters.append(label)
    lines = [
        f"# Settings for the SIMULATED history of host {plan.host!r} ({plan.days} days to {end:%Y-%m-%d %H:%M} UTC,",
        f"# {plan.gpus} GPUs), written by `campwatch seed-history`. Every price and plan figure here is made up.",
        "[cost.pricing]",
        'kind = "hourly"',
        f"gpu_hourly_usd = {GPU_HOURLY_USD:.2f}",
        "",
        "[[cost.pricing.changes]]  # the GPU price change",
        f'effective_from = "{change.isoformat()}"',
        f"gpu_hourly_usd = {NEW_GPU_HOURLY_USD:.2f}",
    ]
    for quarter in quarters:
        lines += ["", "[[cost.plan]]", f'quarter = "{quarter}"', f"tokens_per_month = {tokens_per_month}",
                  f"cost_per_month_usd = {cost_per_month:.2f}"]
    return "\n".join(lines) + "\n"
