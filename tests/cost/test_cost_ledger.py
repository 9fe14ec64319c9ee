"""The hourly ledger on SQLite and PostgreSQL: hand-checked rows, idempotence, gaps, retention."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, delete, func, select

from agent.cost.ledger import read_ledger, recompute_ledger
from agent.store.schema import cost_hours, gpu_samples, request_records
from tests.cost.cost_helpers import T0, at, cost_settings, engine_row, request_row, steady_host, write

H = timedelta(hours=1)
SETTINGS = cost_settings(overhead_usd_per_month=Decimal("730"))


def test_hand_checked_hours_from_gpu_and_engine_samples(store: Engine) -> None:
    steady_host(store)
    assert recompute_ledger(store, SETTINGS, T0, T0 + 2 * H, "h1") == 2
    first, second = read_ledger(store, SETTINGS, T0, T0 + 2 * H, "h1")
    assert (first.hour, second.hour) == (T0, T0 + H)
    assert first.gpus == 1
    assert first.held_seconds == pytest.approx(3600)
    assert first.busy_gpu_seconds == pytest.approx(1800)
    assert first.gpu_cost_usd == Decimal("3.6")  # $3.60 per GPU-hour
    assert first.usage_gpu_cost_usd == Decimal("1.8")
    assert first.energy_cost_usd == 0  # included in the hourly rate
    assert first.overhead_usd == Decimal("1")  # $730 a 730-hour month
    assert first.energy_joules == pytest.approx(359 * 1000)  # the first-ever reading has no increase
    assert second.energy_joules == pytest.approx(360 * 1000)
    assert (first.prompt_tokens, first.generation_tokens, first.requests) == (359_000, 89_750, 359)
    assert (second.prompt_tokens, second.generation_tokens) == (360_000, 90_000)
    assert first.token_source == "engine"
    assert first.api_pricing.method == "counters"
    assert first.api_pricing.prices["openai/gpt-4o"].total_usd == Decimal("0.8975") + Decimal("0.8975")
    assert first.engine_gap_seconds == 0
    assert second.engine_gap_seconds == 0


def test_recomputing_is_idempotent_and_independent_of_the_range_asked(store: Engine) -> None:
    steady_host(store)
    recompute_ledger(store, SETTINGS, T0, T0 + 2 * H)
    once = [r.measured() for r in read_ledger(store, SETTINGS, T0, T0 + 2 * H)]
    recompute_ledger(store, SETTINGS, T0, T0 + 2 * H)
    recompute_ledger(store, SETTINGS, T0 + H, T0 + H + timedelta(minutes=1))
    recompute_ledger(store, SETTINGS, T0 + timedelta(minutes=30), T0 + timedelta(minutes=31))
    again = [r.measured() for r in read_ledger(store, SETTINGS, T0, T0 + 2 * H)]
    assert again == once
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cost_hours)).scalar() == 2


def test_an_agent_outage_is_billed_and_reported_as_a_gap(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine, end_s=3600, skip=(1200, 2400))
    recompute_ledger(sqlite_engine, SETTINGS, T0, T0 + H, "h1")
    (row,) = read_ledger(sqlite_engine, SETTINGS, T0, T0 + H)
    assert row.allocated_gpu_seconds == pytest.approx(3600)
    assert row.gpu_gap_seconds == pytest.approx(1200)  # nothing between 10:20:00 and 10:40:00
    assert row.gpu_cost_usd == Decimal("3.6")
    assert row.busy_gpu_seconds == pytest.approx((3600 - 1200) / 2)
    assert row.engine_gap_seconds == pytest.approx(1200)
    # the counters kept counting: the increase across the outage is not lost
    assert row.prompt_tokens == 359_000


def test_an_engine_restart_resets_its_counters_without_negative_tokens(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine, end_s=3600, with_engine=False)
    values = [(0, 0), (10, 5000), (20, 9000), (30, 100), (40, 1100)]  # restart between 20 s and 30 s
    write(sqlite_engine, "engine", [engine_row(at(t), prompt=p, generation=0) for t, p in values])
    recompute_ledger(sqlite_engine, SETTINGS, T0, T0 + H, "h1")
    (row,) = read_ledger(sqlite_engine, SETTINGS, T0, T0 + H)
    assert row.prompt_tokens == 5000 + 4000 + 100 + 1000


def test_proxy_records_are_the_token_source_and_are_priced_request_by_request(store: Engine) -> None:
    steady_host(store, end_s=3600, prompt_per_step=0, gen_per_step=0)
    write(store, "requests", [
        request_row(at(100), 1000, 100, n=1), request_row(at(200), 2000, 300, cached=500, n=2),
        request_row(at(300), 50, None, status=500, n=3),
    ])
    recompute_ledger(store, SETTINGS, T0, T0 + H, "h1")
    (row,) = read_ledger(store, SETTINGS, T0, T0 + H)
    assert row.token_source == "proxy"
    assert (row.prompt_tokens, row.generation_tokens, row.cached_tokens, row.requests) == (3000, 400, 500, 2)
    assert row.api_pricing.method == "requests"
    assert row.api_pricing.unpriced_requests == 1
    # gpt-4o: 2500 x $2.50 + 500 x $1.25 (cached) + 400 x $10, per million
    assert row.api_pricing.prices["openai/gpt-4o"].total_usd == Decimal("0.010875")


def test_engine_counters_win_when_clients_bypass_the_proxy(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine, end_s=3600)
    write(sqlite_engine, "requests", [request_row(at(100), 1000, 100)])
    recompute_ledger(sqlite_engine, SETTINGS, T0, T0 + H, "h1")
    (row,) = read_ledger(sqlite_engine, SETTINGS, T0, T0 + H)
    assert row.token_source == "engine"
    assert row.prompt_tokens == 359_000


def test_hours_purged_by_retention_keep_their_ledger_rows(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine)
    recompute_ledger(sqlite_engine, SETTINGS, T0, T0 + 2 * H)
    before = {r.hour: r.measured() for r in read_ledger(sqlite_engine, SETTINGS, T0, T0 + 2 * H)}
    with sqlite_engine.begin() as conn:  # retention deletes raw rows older than 10:30
        conn.execute(delete(gpu_samples).where(gpu_samples.c.ts < at(1800)))
    recompute_ledger(sqlite_engine, SETTINGS, T0 - H, T0 + 2 * H)
    after = {r.hour: r.measured() for r in read_ledger(sqlite_engine, SETTINGS, T0 - H, T0 + 2 * H)}
    assert after == before


def test_purged_proxy_records_do_not_turn_priced_hours_into_engine_estimates(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine, prompt_per_step=0, gen_per_step=0)
    write(sqlite_engine, "requests", [request_row(at(s), 1000, 100, n=s) for s in range(60, 7200, 600)])
    recompute_ledger(sqlite_engine, SETTINGS, T0, T0 + 2 * H)
    before = [r.measured() for r in read_ledger(sqlite_engine, SETTINGS, T0, T0 + 2 * H)]
    assert [r["token_source"] for r in before] == ["proxy", "proxy"]
    with sqlite_engine.begin() as conn:  # request records are purged before GPU and engine samples
        conn.execute(delete(request_records).where(request_records.c.ts < T0 + H))
    recompute_ledger(sqlite_engine, SETTINGS, T0, T0 + 2 * H)
    assert [r.measured() for r in read_ledger(sqlite_engine, SETTINGS, T0, T0 + 2 * H)] == before


def test_missing_hours_before_the_retention_horizon_are_still_filled_in(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine)
    write(sqlite_engine, "requests", [request_row(at(4000), 1000, 100)])  # the proxy started in the second hour
    assert recompute_ledger(sqlite_engine, SETTINGS, T0, T0 + 2 * H) == 2
    assert [r.hour for r in read_ledger(sqlite_engine, SETTINGS, T0, T0 + 2 * H)] == [T0, T0 + H]
