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
import pandas as pd
from sqlalchemy import Engine

from agent.samples import CapturedOutput, RequestRecord
from agent.sim.trace import TraceRequest, load_trace
from agent.sim.vllm_metrics import token_buckets
from agent.store.rows import insert_columns, insert_rows

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


def _loads(minutes: pd.DatetimeIndex, start: datetime, plan: HistoryPlan) -> np.ndarray:
    """_load for every minute at once (the same business-hours, weekly and growth shape)."""
    hour = minutes.hour.to_numpy() + minutes.minute.to_numpy() / 60
    inside = (hour >= 6) & (hour <= 20)
    diurnal = np.where(inside, 0.15 + 0.85 * np.maximum(0.0, np.sin(np.pi * (hour - 6) / 14)), 0.15)
    weekly = np.where(minutes.weekday.to_numpy() >= 5, 0.45, 1.0)
    months = (minutes - pd.Timestamp(start)).total_seconds().to_numpy() / (30 * 86400)
    growth = (1.0 + plan.growth_per_month) ** (months - 3.0)
    return np.asarray(np.minimum(1.0, diurnal * weekly * growth), dtype=float)


def _histogram_json(bounds: tuple[float, ...], prompt: np.ndarray, prompt_sum: np.ndarray, generated: np.ndarray,
                    generated_sum: np.ndarray) -> list[str]:
    """The engine rows' histograms column, minute by minute, exactly as agent.store.rows writes an
    EngineSample's request_prompt_tokens and request_generation_tokens snapshots (cumulative counts)."""
    edges = [repr(float(b)) for b in bounds] + ['"+Inf"']

    def one(counts: list[float], total: float) -> str:
        buckets = "],[".join(f"{le},{c!r}" for le, c in zip(edges, counts, strict=True))
        return f'{{"buckets":[[{buckets}]],"sum":{total!r},"count":{counts[-1]!r}}}'

    return [f'{{"request_prompt_tokens":{one(p, ps)},"request_generation_tokens":{one(g, gs)}}}'
            for p, ps, g, gs in zip(prompt.tolist(), prompt_sum.tolist(), generated.tolist(), generated_sum.tolist(),
                                    strict=True)]


@dataclass
class _Carry:
    """What one day hands the next: cumulative counters, and the last readings the rollups need as
    the base of the next day's first minute (None before the first sample)."""

    prompt_counts: np.ndarray
    gen_counts: np.ndarray
    prompt_total: float = 0.0
    gen_total: float = 0.0
    finished: float = 0.0
    energy: np.ndarray | None = None
    last_energy: np.ndarray | None = None
    last_counters: np.ndarray | None = None


def _day(plan: HistoryPlan, start: datetime, day_start: datetime, day_end: datetime, rng: np.random.Generator,
         trace: _Trace, buckets: tuple[float, ...], carry: _Carry) -> tuple[dict[str, Any], dict[str, Any],
                                                                          dict[str, Any], dict[str, Any], np.ndarray]:
    """One day's raw GPU and engine rows and their 1-minute rollups, as columns (numpy, no value
    object per row): the minute-by-minute simulation of _load, the trace's burstiness and sizes."""
    minutes = pd.date_range(day_start, day_end, freq="1min", inclusive="left")
    m, g = len(minutes), plan.gpus
    first = int((day_start - start).total_seconds() // 60)
    burst = np.asarray(trace.shape)[(first + np.arange(m)) % len(trace.shape)]
    load = np.minimum(1.0, _loads(minutes, start, plan) * (0.85 + 0.15 * burst))
    n = np.maximum(0, rng.normal(plan.peak_requests_per_minute * load, 3).astype(np.int64))
    chosen = rng.integers(0, len(trace.context), int(n.sum()))
    minute_of = np.repeat(np.arange(m), n)
    width = len(buckets) + 1

    def per_minute(bucket: np.ndarray) -> np.ndarray:
        return np.bincount(minute_of * width + bucket[chosen], minlength=m * width).reshape(m, width)

    prompt_counts = carry.prompt_counts + np.cumsum(per_minute(trace.context_bucket), axis=0)
    gen_counts = carry.gen_counts + np.cumsum(per_minute(trace.generated_bucket), axis=0)
    prompt_total = carry.prompt_total + np.cumsum(np.bincount(minute_of, trace.context[chosen], minlength=m))
    gen_total = carry.gen_total + np.cumsum(np.bincount(minute_of, trace.generated[chosen], minlength=m))
    finished = carry.finished + np.cumsum(n).astype(float)
    util = np.where(n > 0, np.minimum(1.0, 0.05 + 0.9 * load + rng.normal(0, 0.03, m)), 0.0)
    power = 70.0 + 630.0 * util
    energy0 = carry.energy if carry.energy is not None else np.zeros(g)
    energy = energy0[:, None] + np.cumsum(power * 60)[None, :]  # (gpu, minute)

    ts = list(minutes.to_pydatetime())
    gpu_ts = ts * g  # GPU by GPU, each minute by minute
    index = np.repeat(np.arange(g), m).tolist()
    uuids = [f"GPU-sim-{i:04d}" for i in index]
    utilization = np.tile(np.maximum(util, 0.0), g).tolist()
    watts = np.tile(power, g).tolist()
    celsius = np.tile(35 + 40 * util, g).tolist()
    flat_energy = energy.ravel()
    shared = {"host": [plan.host] * (m * g), "model": ["Simulated H100 80GB HBM3"] * (m * g),
              "simulated": [True] * (m * g)}
    gpu_raw = {"ts": gpu_ts, "gpu_index": index, "uuid": uuids, "up": [True] * (m * g), **shared,
               "utilization_ratio": utilization, "power_watts": watts, "energy_joules_total": flat_energy.tolist(),
               "memory_used_bytes": [7.6e10] * (m * g), "memory_total_bytes": [8.5e10] * (m * g),
               "temperature_celsius": celsius}
    # the rollups, as agent.store.maintenance computes them from one sample per GPU-minute: the
    # minute's values, and the energy counter's increase since the previous sample (none before the first)
    before = np.concatenate([carry.last_energy if carry.last_energy is not None else np.full(g, np.nan)[:, None],
                             energy[:, :-1]], axis=1)
    increase = np.where(energy >= before, energy - before, energy).ravel()
    joules = [None if math.isnan(b) else v for b, v in zip(before.ravel().tolist(), increase.tolist(), strict=True)]
    gpu_rollup = {"minute": gpu_ts, "gpu_index": index, "uuid": uuids, **shared, "samples": [1] * (m * g),
                  "up_samples": [1] * (m * g), "utilization_avg": utilization, "utilization_max": utilization,
                  "memory_used_max_bytes": gpu_raw["memory_used_bytes"],
                  "memory_total_bytes": gpu_raw["memory_total_bytes"],
                  "power_avg_watts": watts, "power_max_watts": watts, "energy_joules": joules,
                  "temperature_max_celsius": celsius}

    counters = np.stack([prompt_total, gen_total, finished], axis=1)  # (minute, counter)
    previous = np.concatenate([carry.last_counters[None, :] if carry.last_counters is not None
                               else counters[:1], counters[:-1]], axis=0)
    grown = np.where(counters >= previous, counters - previous, counters)
    running, waiting, kv = (n / 6).tolist(), (np.maximum(0.0, n - 200) / 10).tolist(), (0.8 * load).tolist()
    series = {"host": [plan.host] * m, "server": [SERVER] * m, "model": [MODEL] * m, "engine": ["0"] * m,
              "simulated": [True] * m}
    engine_raw = {"ts": ts, **series, "kind": ["vllm"] * m, "up": [True] * m,
                  "prompt_tokens_total": prompt_total.tolist(), "generation_tokens_total": gen_total.tolist(),
                  "requests_finished_total": finished.tolist(), "requests_running": running,
                  "requests_waiting": waiting, "kv_cache_usage_ratio": kv,
                  "histograms": _histogram_json(buckets, prompt_counts.astype(float), prompt_total,
                                                gen_counts.astype(float), gen_total)}
    engine_rollup = {"minute": ts, **series, "samples": [1] * m, "up_samples": [1] * m,
                     "prompt_tokens": grown[:, 0].tolist(), "generation_tokens": grown[:, 1].tolist(),
                     "requests_finished": grown[:, 2].tolist(), "requests_running_avg": running,
                     "requests_waiting_avg": waiting, "kv_cache_usage_avg": kv, "kv_cache_usage_max": kv}

    carry.prompt_counts, carry.gen_counts = prompt_counts[-1], gen_counts[-1]
    carry.prompt_total, carry.gen_total = float(prompt_total[-1]), float(gen_total[-1])
    carry.finished = float(finished[-1])
    carry.energy, carry.last_energy, carry.last_counters = energy[:, -1], energy[:, -1:], counters[-1]
    return gpu_raw, engine_raw, gpu_rollup, engine_rollup, n


def seed_history(engine: Engine, plan: HistoryPlan, progress: Progress | None = None) -> dict[str, int]:
    """Write the simulated history (the store must be migrated), one day at a time as the agent
    would: raw samples and their 1-minute rollups (computed in bulk, equal to what
    agent.store.maintenance.roll_up computes from them), then the day's cost measures (the
    ledger's own code) and drift check. Returns what was written per kind."""
    from agent.config import CaptureSettings, CostSettings, DriftSettings
    from agent.cost.ledger import refresh_ledger
    from agent.store.maintenance import record_rolled_up
    from agent.store.schema import engine_rollups_1m, engine_samples, gpu_rollups_1m, gpu_samples

    rng = np.random.default_rng(plan.seed)
    buckets = token_buckets(8192)
    requests_trace, trace = _trace(buckets)
    end = history_end(plan)
    start = end - timedelta(days=plan.days)
    carry = _Carry(np.zeros(len(buckets) + 1, dtype=np.int64), np.zeros(len(buckets) + 1, dtype=np.int64))
    written = {"gpu_samples": 0, "engine_samples": 0, "request_records": 0, "captured_outputs": 0,
               "gpu_rollup_minutes": 0, "engine_rollup_minutes": 0, "cost_hours": 0, "drift_results": 0, "tokens": 0}
    records_from = end - timedelta(days=plan.request_record_days)
    drift_from = plan.drift_start
    record_every = max(60 // plan.requests_per_hour_recorded, 1)
    retention = timedelta(days=CaptureSettings().text_retention_days)

    pick = random.Random(plan.seed)
    cost_settings, drift_settings = CostSettings(), DriftSettings()
    days = math.ceil((end - start) / timedelta(days=1))
    day_start = start
    for day in range(days):
        day_end = min(day_start + timedelta(days=1), end)
        gpu_raw, engine_raw, gpu_rollup, engine_rollup, _ = _day(plan, start, day_start, day_end, rng, trace, buckets,
                                                                  carry)
        records: list[Any] = []
        for minute in engine_raw["ts"]:
            if minute >= records_from and minute.minute % record_every == 0:
                drifted = drift_from is not None and minute >= drift_from
                record = _record(minute, plan, pick, pick.choice(requests_trace), drifted=drifted)
                records.append(record)
                if pick.random() < 0.25:  # capture.store_text's sampled share, redacted as the proxy does
                    records.append(_captured(record, retention, drifted=drifted))
        written["gpu_samples"] += insert_columns(engine, gpu_samples, gpu_raw)
        written["engine_samples"] += insert_columns(engine, engine_samples, engine_raw)
        insert_rows(engine, records)
        written["request_records"] += sum(isinstance(r, RequestRecord) for r in records)
        written["captured_outputs"] += sum(isinstance(r, CapturedOutput) for r in records)
        written["tokens"] = int(carry.prompt_total + carry.gen_total)
        day_start = day_end
        if not plan.agent_jobs:
            if progress is not None:
                progress(day + 1, days)
            continue
        insert_columns(engine, gpu_rollups_1m, gpu_rollup)
        insert_columns(engine, engine_rollups_1m, engine_rollup)
        record_rolled_up(engine, plan.host, day_end)
        written["gpu_rollup_minutes"] += len(engine_rollup["minute"])
        written["engine_rollup_minutes"] += len(engine_rollup["minute"])
        written["cost_hours"] += refresh_ledger(engine, cost_settings, start, day_end, plan.host)
        if plan.drift_checks and day_end - records_from >= timedelta(days=drift_settings.reference_days + 1):
            from agent.drift.check import run_drift_check

            written["drift_results"] += len(run_drift_check(engine, drift_settings, plan.host, now=day_end))
        if progress is not None:
            progress(day + 1, days)
    return written


def _captured(record: RequestRecord, retention: timedelta, *, drifted: bool) -> CapturedOutput:
    from agent.capture.redact import redact

    body = ("Réponse simulée : la commande {n} part mardi ; écrivez à support@example.com ou au +33 1 23 45 67 89."
            if drifted else "Simulated answer: order {n} ships on Tuesday; write to support@example.com or call "
                            "+1 415 555 0100.")
    return CapturedOutput(ts=record.ts, host=record.host, request_id=record.request_id, model=record.model,
                          text=redact("SIMULATED. " + body.format(n=record.request_id[:6])),
                          expires_at=record.ts + retention)


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
