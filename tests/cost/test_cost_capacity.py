"""Measured capacity: a simulated history with a known saturation throughput, and one without high load."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import timedelta

import pytest
from rich.console import Console
from sqlalchemy import Engine

from agent.cost.capacity import (
    ITL,
    TTFT,
    LoadReading,
    LoadWindow,
    Slo,
    edge_ids,
    estimate_capacity,
    fleet_capacity,
    load_windows,
)
from agent.cost.render import render_report
from agent.cost.report import build_report
from tests.cost.cost_helpers import T0, cost_settings, steady_host, write

H = timedelta(hours=1)

TTFT_BOUNDS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))
ITL_BOUNDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, float("inf"))
SLO = Slo(ttft_p99_s=2.0, itl_p99_s=0.2)
STEP = 15.0
GPUS = 2
SATURATION = 1000.0  # output tokens/s per GPU the simulated engine serves flat out within the SLOs


def _json(counts: dict[str, list[float]]) -> str:
    out = {}
    for name, bounds in ((TTFT, TTFT_BOUNDS), (ITL, ITL_BOUNDS)):
        cum: list[list[object]] = []
        total = 0.0
        for c in counts[name]:
            total += c
            cum.append(["+Inf" if bounds[len(cum)] == float("inf") else bounds[len(cum)], total])
        out[name] = {"buckets": cum, "sum": 0.0, "count": total}
    return json.dumps(out)


def simulate(phases: list[str], block_s: float = 1800.0, seed: int = 7) -> list[LoadReading]:
    """One engine series scraped every 15 s; each phase lasts a block: "low" (no queue, 30 % of
    saturation), "high" (queue of 4, saturation +-4 %, SLOs held), "over" (queue of 20, 10 % more
    throughput but TTFT p99 ~10 s: beyond what the SLO allows)."""
    rng = random.Random(seed)
    counts = {TTFT: [0.0] * len(TTFT_BOUNDS), ITL: [0.0] * len(ITL_BOUNDS)}
    generated, t, out = 0.0, 0.0, []
    for phase in phases:
        end = t + block_s
        while t < end:
            t += STEP
            if phase == "low":
                rate, waiting, ttft_bucket, itl_bucket = 0.3 * SATURATION * GPUS, 0.0, 1, 1
            elif phase == "high":
                rate, waiting, ttft_bucket, itl_bucket = SATURATION * GPUS * rng.uniform(0.96, 1.04), 4.0, 2, 2
            else:
                rate, waiting, ttft_bucket, itl_bucket = 1.1 * SATURATION * GPUS, 20.0, 5, 3
            generated += rate * STEP
            counts[TTFT][ttft_bucket] += 10
            counts[ITL][itl_bucket] += 500
            out.append(LoadReading(T0 + timedelta(seconds=t), "s", True, generated, waiting, _json(counts)))
    return out


def test_a_known_saturation_throughput_is_estimated_within_ten_percent() -> None:
    readings = simulate(["low", "high", "low", "over", "high", "low", "high", "over"])
    capacity = estimate_capacity("h1", load_windows(readings), GPUS, SLO)
    assert capacity.tokens_per_s_per_gpu is not None
    assert capacity.tokens_per_s_per_gpu == pytest.approx(SATURATION, rel=0.10)
    assert capacity.tokens_per_s_per_gpu == pytest.approx(SATURATION, rel=0.03)  # and in fact much closer
    # 3 high blocks of 6 windows; the 12 overloaded windows are saturated but break the TTFT SLO.
    assert capacity.windows == 18
    assert capacity.slo_broken_windows == 12
    assert capacity.saturated_windows == 30
    assert len(capacity.periods) == 3
    assert capacity.periods[0] == (T0 + timedelta(minutes=30), T0 + timedelta(minutes=60))
    assert capacity.confidence == "medium"  # 18 windows, tight spread
    assert capacity.spread is not None and capacity.spread < 0.05


def test_a_history_without_high_load_says_not_enough_data() -> None:
    readings = simulate(["low", "low", "low", "low"])
    capacity = estimate_capacity("h1", load_windows(readings), GPUS, SLO)
    assert capacity.tokens_per_s_per_gpu is None and capacity.confidence is None
    assert capacity.saturated_windows == 0
    assert "not enough high-load data" in capacity.reason


def test_saturation_only_beyond_the_slo_is_not_taken_as_capacity() -> None:
    capacity = estimate_capacity("h1", load_windows(simulate(["low", "over", "over"])), GPUS, SLO)
    assert capacity.tokens_per_s_per_gpu is None
    assert capacity.slo_broken_windows == 12 and "12 broke the SLO" in capacity.reason


def test_windows_without_latency_histograms_are_unchecked_not_trusted() -> None:
    readings = [LoadReading(r.ts, r.series, r.up, r.generation_tokens_total, r.requests_waiting, None)
                for r in simulate(["high", "high"])]
    capacity = estimate_capacity("h1", load_windows(readings), GPUS, SLO)
    assert capacity.tokens_per_s_per_gpu is None
    assert capacity.unchecked_windows == capacity.saturated_windows > 0


def test_a_counter_reset_within_the_history_adds_no_negative_rate() -> None:
    readings = simulate(["high", "high"])
    cut = len(readings) // 2
    reset = [LoadReading(r.ts, r.series, r.up, (r.generation_tokens_total or 0) - (readings[cut].generation_tokens_total
             or 0) + 30_000, r.requests_waiting, r.histograms_text) for r in readings[cut:]]
    windows = load_windows(readings[:cut] + reset)
    assert all(w.output_tokens >= 0 for w in windows)


def test_fleet_capacity_weights_pools_by_gpus_and_needs_every_pool() -> None:
    a = estimate_capacity("a", load_windows(simulate(["high"])), 2, SLO)
    b = estimate_capacity("b", [LoadWindow(T0, 300, 1.0, 0.0, None, None)], 1, SLO)
    assert a.tokens_per_s_per_gpu is not None
    assert fleet_capacity([a, a]) == pytest.approx(a.tokens_per_s_per_gpu)
    assert fleet_capacity([a, b]) is None


def _engine_rows(readings: list[LoadReading]) -> list[dict[str, object]]:
    return [{"ts": r.ts, "host": "h1", "server": "http://127.0.0.1:8000/metrics", "kind": "vllm", "model": "m",
             "engine": "0", "up": True, "simulated": False, "generation_tokens_total": r.generation_tokens_total,
             "prompt_tokens_total": 3 * (r.generation_tokens_total or 0), "requests_waiting": r.requests_waiting,
             "requests_finished_total": 0.0, "histograms": r.histograms_text} for r in readings]


def test_the_report_rests_break_even_and_the_hybrid_on_measured_capacity(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine, gpus=GPUS, with_engine=False)  # 2 GPUs for 2 h at $3.60 per GPU-hour
    write(sqlite_engine, "engine", _engine_rows(simulate(["high", "low", "high", "low"])))
    report = build_report(sqlite_engine, cost_settings(), timedelta(hours=2), "h1", now=T0 + 2 * H)
    (capacity,) = report.capacities
    assert capacity.tokens_per_s_per_gpu is not None
    assert capacity.tokens_per_s_per_gpu == pytest.approx(SATURATION, rel=0.05)
    (mix,) = report.hybrid
    assert mix.capacity_basis == "measured"
    # Output tokens/s scaled to all tokens at the window's 3:1 prompt:output mix.
    assert mix.capacity_tokens_per_s_per_gpu == pytest.approx(4 * capacity.tokens_per_s_per_gpu)
    (verdict,) = report.total.verdicts
    assert verdict.capacity_basis == "measured"
    assert verdict.breakeven_tokens_per_month is not None and verdict.gpus_needed is not None
    per_gpu_month = 4 * capacity.tokens_per_s_per_gpu * 730 * 3600
    assert verdict.gpus_needed == pytest.approx(float(verdict.breakeven_tokens_per_month) / per_gpu_month)
    assert verdict.utilization_needed == pytest.approx(verdict.gpus_needed / GPUS)
    console = Console(record=True, width=220)
    render_report(console, report, hybrid=True)
    assert "rests on measured capacity" in console.export_text()


def test_without_high_load_the_report_keeps_the_utilization_basis_and_says_so(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine, gpus=GPUS, with_engine=False)
    write(sqlite_engine, "engine", _engine_rows(simulate(["low", "low", "low", "low"])))
    report = build_report(sqlite_engine, cost_settings(), timedelta(hours=2), "h1", now=T0 + 2 * H)
    assert "not enough high-load data" in report.capacities[0].reason
    assert report.hybrid[0].capacity_basis == "utilization"
    assert report.total.verdicts[0].capacity_basis == "utilization"
    assert report.total.verdicts[0].gpus_needed is None


def test_reading_only_the_window_edge_histograms_gives_the_same_windows() -> None:
    full = [dataclasses.replace(r, row_id=i) for i, r in enumerate(simulate(["low", "high", "over"]))]
    edges = edge_ids(full)
    assert len(edges) < len(full) / 10  # 20 scrapes a window, one edge each
    sparse = [r if r.row_id in edges else dataclasses.replace(r, histograms_text=None) for r in full]
    assert load_windows(sparse) == load_windows(full)


def test_an_unreadable_engine_table_leaves_the_report_on_the_utilization_basis(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine, gpus=GPUS)
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE engine_samples RENAME COLUMN requests_waiting TO gone")
    report = build_report(sqlite_engine, cost_settings(), timedelta(hours=2), "h1", now=T0 + 2 * H)
    assert "capacity not measured: the engine samples could not be read" in report.capacities[0].reason
    assert report.total.verdicts[0].state != "unknown"
    assert report.hybrid[0].capacity_basis == "utilization"


def test_latency_is_read_only_around_saturated_windows_with_the_same_estimate() -> None:
    full = [dataclasses.replace(r, row_id=i) for i, r in enumerate(simulate(["low", "high", "low", "high"] * 2))]
    everything = estimate_capacity("h1", load_windows(full), GPUS, SLO)
    edges = edge_ids(full, min_waiting=SLO.min_waiting)
    assert len(edges) < len(edge_ids(full))
    sparse = [r if r.row_id in edges else dataclasses.replace(r, histograms_text=None) for r in full]
    busy_only = estimate_capacity("h1", load_windows(sparse, min_waiting=SLO.min_waiting), GPUS, SLO)
    assert busy_only == everything
