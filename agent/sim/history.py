"""A simulated history for trying the review notebooks before a real quarter has been recorded:
GPU and engine samples once a minute, with a diurnal and weekly load pattern and a growth trend,
request sizes drawn from the real Azure trace, and per-request records for the last days (with an
output shift near the end, for the drift notebook). Every row is marked simulated."""

from __future__ import annotations

import bisect
import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from agent.samples import EngineSample, GpuSample, HistogramSnapshot, RequestRecord, Row
from agent.sim.trace import TraceRequest, load_trace
from agent.sim.vllm_metrics import token_buckets
from agent.store.writer import StoreWriter
from agent.telemetry import Telemetry

MODEL = "simulated/llama-3.1-8b-instruct"
SERVER = "http://127.0.0.1:8000/metrics"


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
    seed: int = 7


def _load(minute: datetime, start: datetime, plan: HistoryPlan) -> float:
    """Share of peak traffic at this minute: business-hours peak, quiet weekends, monthly growth."""
    hour = minute.hour + minute.minute / 60
    diurnal = 0.15 + 0.85 * max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.15
    weekly = 0.45 if minute.weekday() >= 5 else 1.0
    months = (minute - start).total_seconds() / (30 * 86400)
    growth = (1.0 + plan.growth_per_month) ** (months - 3.0)
    return float(min(1.0, diurnal * weekly * growth))


class _Hist:
    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0.0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def snapshot(self) -> HistogramSnapshot:
        cumulative, running = [], 0.0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return HistogramSnapshot(tuple(cumulative), self.sum, running)


def _flush(writer: StoreWriter, rows: list[Row]) -> None:
    writer.offer(rows)
    writer.flush()
    rows.clear()


def seed_history(engine: Engine, plan: HistoryPlan) -> dict[str, int]:
    """Write the simulated history (the store must be migrated). Returns rows written per kind."""
    rng = random.Random(plan.seed)
    trace: list[TraceRequest] = list(load_trace())
    end = (plan.end or datetime.now(UTC)).replace(second=0, microsecond=0)
    start = end - timedelta(days=plan.days)
    writer = StoreWriter(engine, Telemetry(plan.host), queue_max_rows=50_000)
    buckets = token_buckets(8192)
    prompt_h, gen_h = _Hist(buckets), _Hist(buckets)
    prompt_total = gen_total = finished = 0.0
    energy = [0.0] * plan.gpus
    rows: list[Row] = []
    written = {"gpu_samples": 0, "engine_samples": 0, "request_records": 0}
    records_from = end - timedelta(days=plan.request_record_days)
    drift_from = end - timedelta(days=plan.drift_last_days)
    minute = start
    while minute < end:
        load = _load(minute, start, plan)
        n = max(0, int(rng.gauss(plan.peak_requests_per_minute * load, 3)))
        for _ in range(n):
            req = rng.choice(trace)
            prompt_h.observe(req.context_tokens)
            gen_h.observe(req.generated_tokens)
            prompt_total += req.context_tokens
            gen_total += req.generated_tokens
        finished += n
        util = min(1.0, 0.05 + 0.9 * load + rng.gauss(0, 0.03)) if n else 0.0
        for g in range(plan.gpus):
            power = 70.0 + 630.0 * util
            energy[g] += power * 60
            rows.append(GpuSample(ts=minute, host=plan.host, gpu_index=g, uuid=f"GPU-sim-{g:04d}",
                                  model="Simulated H100 80GB HBM3", up=True, simulated=True, values={
                                      "utilization_ratio": max(util, 0.0), "power_watts": power,
                                      "energy_joules_total": energy[g], "memory_used_bytes": 7.6e10,
                                      "memory_total_bytes": 8.5e10, "temperature_celsius": 35 + 40 * util}))
        rows.append(EngineSample(ts=minute, host=plan.host, server=SERVER, kind="vllm", model=MODEL, engine="0",
                                 up=True, simulated=True, values={
                                     "prompt_tokens_total": prompt_total, "generation_tokens_total": gen_total,
                                     "requests_finished_total": finished, "requests_running": n / 6,
                                     "requests_waiting": max(0.0, n - 200) / 10, "kv_cache_usage_ratio": 0.8 * load},
                                 histograms={"request_prompt_tokens": prompt_h.snapshot(),
                                             "request_generation_tokens": gen_h.snapshot()}))
        if minute >= records_from and minute.minute % max(60 // plan.requests_per_hour_recorded, 1) == 0:
            rows.append(_record(minute, plan, rng, rng.choice(trace), drifted=minute >= drift_from))
        if len(rows) >= 5000:
            written["gpu_samples"] += sum(isinstance(r, GpuSample) for r in rows)
            written["engine_samples"] += sum(isinstance(r, EngineSample) for r in rows)
            written["request_records"] += sum(isinstance(r, RequestRecord) for r in rows)
            _flush(writer, rows)
        minute += timedelta(minutes=1)
    written["gpu_samples"] += sum(isinstance(r, GpuSample) for r in rows)
    written["engine_samples"] += sum(isinstance(r, EngineSample) for r in rows)
    written["request_records"] += sum(isinstance(r, RequestRecord) for r in rows)
    _flush(writer, rows)
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
        non_ascii_ratio=abs(rng.gauss(0.08 if drifted else 0.01, 0.01)), language="en", simulated=True)
