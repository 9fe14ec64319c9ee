"""Helpers for the cost tests: times, settings, and raw rows written the way the store writes them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert

from agent.config import BaselineSettings, CostSettings, PricingSettings
from agent.cost.measures import HourMeasure
from agent.store.schema import engine_samples, gpu_samples, request_records

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
"""A Monday 10:00 UTC: the hours used by hand-computed cases."""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def cost_settings(**overrides: Any) -> CostSettings:
    base: dict[str, Any] = {
        "pricing": PricingSettings(kind="hourly", gpu_hourly_usd=Decimal("3.60")),
        "baselines": (BaselineSettings(provider="openai", model="gpt-4o"),),
    }
    base.update(overrides)
    return CostSettings(**base)


def gpu_row(ts: datetime, *, host: str = "h1", uuid: str = "GPU-0", up: bool = True,
            util: float | None = None, joules: float | None = None, simulated: bool = False) -> dict[str, Any]:
    return {"ts": ts, "host": host, "gpu_index": int(uuid.rsplit("-", 1)[-1]) if uuid[-1].isdigit() else 0,
            "uuid": uuid, "model": "NVIDIA H100", "up": up, "simulated": simulated,
            "utilization_ratio": util, "energy_joules_total": joules}


def hist_json(prompt: Sequence[tuple[float, float]] | None = None, prompt_sum: float = 0.0,
              gen: Sequence[tuple[float, float]] | None = None, gen_sum: float = 0.0) -> str:
    data: dict[str, Any] = {}
    if prompt is not None:
        data["request_prompt_tokens"] = {"buckets": [["+Inf" if le == float("inf") else le, c] for le, c in prompt],
                                         "sum": prompt_sum, "count": prompt[-1][1]}
    if gen is not None:
        data["request_generation_tokens"] = {"buckets": [["+Inf" if le == float("inf") else le, c] for le, c in gen],
                                             "sum": gen_sum, "count": gen[-1][1]}
    return json.dumps(data)


def engine_row(ts: datetime, *, host: str = "h1", up: bool = True, prompt: float | None = None,
               generation: float | None = None, cached: float | None = None, finished: float | None = None,
               histograms: str | None = None, server: str = "http://127.0.0.1:8000/metrics",
               engine: str = "0") -> dict[str, Any]:
    return {"ts": ts, "host": host, "server": server, "kind": "vllm", "model": "m", "engine": engine, "up": up,
            "simulated": False, "prompt_tokens_total": prompt, "generation_tokens_total": generation,
            "cached_prompt_tokens_total": cached, "requests_finished_total": finished, "histograms": histograms}


def request_row(ts: datetime, prompt: int | None, completion: int | None, *, cached: int | None = None,
                status: int = 200, host: str = "h1", n: int = 0) -> dict[str, Any]:
    return {"ts": ts, "host": host, "request_id": f"r{n}-{ts.timestamp()}", "upstream": "http://127.0.0.1:8000",
            "route": "/v1/chat/completions", "method": "POST", "model": "m", "status": status, "stream": False,
            "caller": "test", "prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": cached,
            "latency_seconds": 0.1, "chunks": 1, "json_requested": False, "simulated": False}


def write(engine: Engine, table: str, rows: Sequence[dict[str, Any]]) -> None:
    target = {"gpu": gpu_samples, "engine": engine_samples, "requests": request_records}[table]
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(target), list(rows))


def steady_host(engine: Engine, *, host: str = "h1", start_s: float = 0.0, end_s: float = 7200.0,
                step: float = 10.0, util: float = 0.5, watts: float = 100.0, prompt_per_step: float = 1000.0,
                gen_per_step: float = 250.0, gpus: int = 1, with_engine: bool = True,
                skip: tuple[float, float] | None = None) -> None:
    """A host sampled every `step` seconds from T0+start_s to T0+end_s inclusive (both GPU and engine),
    optionally silent (agent down) for the seconds in `skip`."""
    gpu_rows, engine_rows = [], []
    n = round((end_s - start_s) / step)
    for i in range(n + 1):
        t = start_s + i * step
        if skip is not None and skip[0] < t < skip[1]:
            continue
        for g in range(gpus):
            gpu_rows.append(gpu_row(at(t), host=host, uuid=f"GPU-{g}", util=util, joules=watts * (t - start_s)))
        if with_engine:
            engine_rows.append(engine_row(at(t), host=host, prompt=prompt_per_step * i, generation=gen_per_step * i,
                                          finished=float(i)))
    write(engine, "gpu", gpu_rows)
    write(engine, "engine", engine_rows)


def hour_measure(hour: datetime, *, gpus: int = 2, busy: float = 0.5, joules: float = 3.6e6) -> HourMeasure:
    held = 3600.0
    return HourMeasure(
        hour=hour, host="h1", gpus=gpus, held_seconds=held, allocated_gpu_seconds=held * gpus,
        observed_gpu_seconds=held * gpus, gpu_gap_seconds=0.0, busy_gpu_seconds=held * gpus * busy,
        engine_gap_seconds=0.0, energy_joules=joules, engine_prompt_tokens=1_000_000,
        engine_generation_tokens=250_000, engine_cached_tokens=0, engine_requests=1000,
        engine_prompt_histogram=None, proxy_prompt_tokens=0, proxy_generation_tokens=0, proxy_cached_tokens=0,
        proxy_requests=0, proxy_unpriced_requests=0, token_source="engine", request_groups=False,
        simulated=False, measured_at=hour + timedelta(hours=1))
