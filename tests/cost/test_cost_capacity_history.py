"""Measured capacity beyond raw retention: the high-load periods whose raw scrapes retention removed
still count, read from the 1-minute rollups (their latency histograms)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cost_helpers import write
from sqlalchemy import Engine, func, select

from agent.cost.capacity import ITL, TTFT, Slo, estimate_capacity
from agent.cost.report import capacity_windows, rollup_split
from agent.store.maintenance import LATENCY_HISTOGRAMS, latency_text, maintain
from agent.store.schema import engine_rollups_1m, engine_samples

START = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 8
STEP = 60.0
RAW_DAYS = 3.0
BOUNDS = (0.05, 0.25, 1.0, 2.5, 10.0, float("inf"))
SLO = Slo(ttft_p99_s=2.0, itl_p99_s=0.5)
BUSY_RATE = 2000.0
"""Output tokens/s while requests queue: the saturation throughput of the simulated engine (1 GPU)."""
IDLE_RATE = 300.0


def busy(ts: datetime) -> bool:
    """Queueing 10:00-12:00 UTC on the first two days only: long gone from the raw table."""
    return ts < START + timedelta(days=2) and 10 <= ts.hour < 12


def _hist(counts: list[float]) -> dict[str, Any]:
    cumulative = [sum(counts[:i + 1]) for i in range(len(counts))]
    return {"buckets": [["+Inf" if le == float("inf") else le, c] for le, c in zip(BOUNDS, cumulative, strict=True)],
            "sum": 0.0, "count": cumulative[-1]}


def seed(engine: Engine) -> datetime:
    """DAYS of one engine scraped every minute; returns the end of the history."""
    ttft, itl = [0.0] * len(BOUNDS), [0.0] * len(BOUNDS)
    generated = 0.0
    rows = []
    n = int(DAYS * 86400 / STEP)
    for i in range(n):
        ts = START + timedelta(seconds=i * STEP)
        hot = busy(ts)
        generated += (BUSY_RATE if hot else IDLE_RATE) * STEP
        ttft[2 if hot else 1] += 30  # busy: within 1 s, under the 2 s SLO
        itl[1] += 3000  # within 0.25 s
        rows.append({"ts": ts, "host": "h1", "server": "s", "kind": "vllm", "model": "m", "engine": "0", "up": True,
                     "simulated": False, "generation_tokens_total": generated,
                     "requests_waiting": 4.0 if hot else 0.0,
                     "histograms": json.dumps({TTFT: _hist(ttft), ITL: _hist(itl),
                                               "request_prompt_tokens": _hist([1.0] * len(BOUNDS))})})
    write(engine, "engine", rows)
    return START + timedelta(seconds=n * STEP)


def test_the_capacity_still_uses_high_load_periods_older_than_raw_retention(sqlite_engine: Engine) -> None:
    end = seed(sqlite_engine)
    since = end - timedelta(days=DAYS)
    before = estimate_capacity("h1", _windows(sqlite_engine, since, end), 1, SLO)
    maintain(sqlite_engine, "h1", raw_days=RAW_DAYS, rollup_days=400, now=end)
    with sqlite_engine.connect() as conn:
        oldest = conn.execute(select(func.min(engine_samples.c.ts))).scalar()
        minutes = conn.execute(select(func.count()).select_from(engine_rollups_1m)).scalar()
    assert oldest is not None and oldest.replace(tzinfo=UTC) >= end - timedelta(days=RAW_DAYS)
    assert minutes == DAYS * 1440
    after = estimate_capacity("h1", _windows(sqlite_engine, since, end), 1, SLO)
    # By hand: 2 periods of 2 h at 2,000 output tokens/s while queueing, all within the SLOs.
    assert before.tokens_per_s_per_gpu == pytest.approx(BUSY_RATE, rel=0.1)
    assert after.tokens_per_s_per_gpu is not None
    assert after.tokens_per_s_per_gpu == pytest.approx(BUSY_RATE, rel=0.1)
    assert after.windows >= 40 and after.slo_broken_windows == 0
    assert [p[0].date() for p in after.periods] == [START.date(), (START + timedelta(days=1)).date()]


def test_recent_raw_and_older_rollup_windows_are_each_counted_once(sqlite_engine: Engine) -> None:
    end = seed(sqlite_engine)
    since = end - timedelta(days=DAYS)
    raw_only = _windows(sqlite_engine, since, end)
    maintain(sqlite_engine, "h1", raw_days=RAW_DAYS, rollup_days=400, now=end)
    mixed = _windows(sqlite_engine, since, end)
    starts = [w.start for w in mixed]
    assert len(starts) == len(set(starts))
    # every generated token of the history is in some window, bar the rollups' first base minute
    assert sum(w.output_tokens for w in mixed) == pytest.approx(sum(w.output_tokens for w in raw_only), rel=1e-3)


def test_rollup_split_switches_to_raw_two_windows_after_the_first_scrape() -> None:
    since = datetime(2026, 6, 1, tzinfo=UTC)
    end = since + timedelta(days=10)
    assert rollup_split(since, None, end, 300) == end
    assert rollup_split(since, since + timedelta(seconds=100), end, 300) == since
    assert rollup_split(since, since + timedelta(days=2, seconds=10), end, 300) == since + timedelta(days=2,
                                                                                                      seconds=600)


def test_rollups_keep_only_the_latency_histograms_the_capacity_reads() -> None:
    assert LATENCY_HISTOGRAMS == (TTFT, ITL)
    text = json.dumps({TTFT: _hist([1.0] * len(BOUNDS)), "request_prompt_tokens": _hist([2.0] * len(BOUNDS))})
    kept = json.loads(latency_text(text) or "{}")
    assert list(kept) == [TTFT]
    assert latency_text(json.dumps({"request_prompt_tokens": {}})) is None
    assert latency_text("not json") is None and latency_text(None) is None


def _windows(engine: Engine, since: datetime, end: datetime) -> list[Any]:
    with engine.connect() as conn:
        return capacity_windows(conn, "h1", since, end, 300.0, SLO.min_waiting)
