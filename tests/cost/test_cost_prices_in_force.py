"""Prices in force per hour: measures are stored, prices applied at report time from the current
settings, each dated change from its effective_from on (issue 15)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from agent.config import BaselineSettings, DatedAmount, DatedDiscount, PricingChange, PricingSettings
from agent.cost.baselines import resolve_baselines
from agent.cost.ledger import recompute_ledger, refresh_ledger
from agent.cost.pricefile import parse_price_data
from agent.cost.pricing import price_rows
from agent.cost.report import build_report
from agent.cost.units import micros
from agent.store.db import open_engine
from agent.store.schema import metadata
from tests.cost.cost_helpers import T0, cost_settings, hour_measure, steady_host

H = timedelta(hours=1)


def test_a_gpu_rate_change_mid_quarter_prices_each_side_at_its_own_rate() -> None:
    # Q3 2026, one day before and one day after a rate change on 2026-08-15: 24 h at $2.50, 24 h at $3.10.
    before = [hour_measure(datetime(2026, 8, 14, h, tzinfo=UTC)) for h in range(24)]
    after = [hour_measure(datetime(2026, 8, 15, h, tzinfo=UTC)) for h in range(24)]
    settings = cost_settings(pricing=PricingSettings(gpu_hourly_usd=Decimal("2.50"), changes=(
        PricingChange(effective_from=date(2026, 8, 15), gpu_hourly_usd=Decimal("3.10")),)))
    rows, segments = price_rows(before + after, {}, settings, ())
    assert [r.gpu_cost_usd for r in rows[:24]] == [Decimal("5.00")] * 24  # 2 GPU-hours x $2.50
    assert [r.gpu_cost_usd for r in rows[24:]] == [Decimal("6.20")] * 24  # 2 GPU-hours x $3.10
    assert sum(r.gpu_cost_usd for r in rows) == Decimal("268.80")  # 48 x 2.50 x 2 + ... exactly
    assert [(s.start, s.end, s.hours, s.pricing.gpu_hourly_usd) for s in segments] == [
        (datetime(2026, 8, 14, tzinfo=UTC), datetime(2026, 8, 15, tzinfo=UTC), 24, Decimal("2.50")),
        (datetime(2026, 8, 15, tzinfo=UTC), datetime(2026, 8, 16, tzinfo=UTC), 24, Decimal("3.10")),
    ]
    assert segments[1].description == "$3.10/GPU-h, energy in the rate, overhead $0/month"


def test_every_pricing_input_can_change_on_a_date() -> None:
    settings = cost_settings(
        pricing=PricingSettings(kind="owned", purchase_usd=Decimal("73000"), amortization_months=10,
                                electricity_usd_per_kwh=Decimal("0.10"), pue=Decimal("1.5"), changes=(
            PricingChange(effective_from=date(2026, 3, 3), electricity_usd_per_kwh=Decimal("0.20"),
                          pue=Decimal("1.2")),)),
        overhead_usd_per_month=Decimal("730"),
        overhead_changes=(DatedAmount(effective_from=date(2026, 3, 3), value=Decimal("1460")),))
    day1 = hour_measure(datetime(2026, 3, 2, 23, tzinfo=UTC))
    day2 = hour_measure(datetime(2026, 3, 3, 0, tzinfo=UTC))
    (r1, r2), _ = price_rows([day1, day2], {}, settings, ())
    assert r1.gpu_cost_usd == r2.gpu_cost_usd == Decimal(10)  # $73,000 / (10 x 730 h) per host-hour
    assert r1.energy_cost_usd == Decimal("0.15")  # 1 kWh x $0.10 x 1.5
    assert r2.energy_cost_usd == Decimal("0.24")  # 1 kWh x $0.20 x 1.2
    assert (r1.overhead_usd, r2.overhead_usd) == (Decimal(1), Decimal(2))


def test_a_dated_discount_and_dated_price_file_entries_apply_from_their_day() -> None:
    data = {"prices": [
        {"provider": "acme", "model": "m1", "input_mtok": "1", "output_mtok": "2", "as_of": "2026-01-01",
         "source": "list"},
        {"provider": "acme", "model": "m1", "input_mtok": "2", "output_mtok": "4", "as_of": "2026-03-01",
         "source": "new list", "effective_from": "2026-03-03"},
    ]}
    entries = parse_price_data(data, "prices.toml")
    assert [e.effective_from for e in entries[("acme", "m1")]] == [None, date(2026, 3, 3)]
    settings = cost_settings(baselines=(BaselineSettings(
        provider="acme", model="m1", discount=Decimal("0.5"),
        discount_changes=(DatedDiscount(effective_from=date(2026, 3, 4), discount=Decimal("0")),)),))
    from agent.cost import baselines as b

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(b, "load_price_file", lambda _path: entries)
        (baseline,) = resolve_baselines(settings.model_copy(update={"price_file": "prices.toml"}))
    hours = [hour_measure(datetime(2026, 3, d, 12, tzinfo=UTC)) for d in (2, 3, 4)]
    rows, _ = price_rows(hours, {}, settings, (baseline,))
    # 1 Mtok in + 0.25 Mtok out each hour: $1.5 list, half off; then $3 list, half off; then $3, no discount.
    assert [r.api_pricing.prices["acme/m1"].total_usd for r in rows] == [Decimal("0.75"), Decimal("1.5"),
                                                                          Decimal("3")]


def _fresh_report_usd(raw_from: Engine, tmp_path: Path, settings: object, name: str) -> Decimal:
    """The allocation total computed from scratch: a new database holding only the raw rows."""
    from sqlalchemy import select

    from agent.store.schema import engine_samples, gpu_samples, request_records

    fresh = open_engine(f"sqlite:///{tmp_path / name}")
    metadata.create_all(fresh)
    with raw_from.connect() as src, fresh.begin() as dst:
        for table in (gpu_samples, engine_samples, request_records):
            rows = [dict(r._mapping) for r in src.execute(select(table))]
            if rows:
                dst.execute(table.insert(), rows)
    report = build_report(fresh, settings, timedelta(hours=2), "h1", now=T0 + 2 * H)  # type: ignore[arg-type]
    fresh.dispose()
    return report.total.allocation.total_usd


def test_the_same_database_reported_before_and_after_a_settings_change(sqlite_engine: Engine,
                                                                        tmp_path: Path) -> None:
    steady_host(sqlite_engine)
    old = cost_settings()
    new = cost_settings(pricing=PricingSettings(gpu_hourly_usd=Decimal("10")),
                        overhead_usd_per_month=Decimal("4000"))
    refresh_ledger(sqlite_engine, old, T0, T0 + 2 * H)  # the agent stored the hours under the old settings
    before = build_report(sqlite_engine, old, timedelta(hours=2), "h1", now=T0 + 2 * H).total.allocation.total_usd
    after = build_report(sqlite_engine, new, timedelta(hours=2), "h1", now=T0 + 2 * H).total.allocation.total_usd
    assert before == Decimal("7.2")  # 2 GPU-hours at $3.60
    assert after == Decimal(20) + 2 * micros(Decimal(4000) / 730)  # 2 GPU-hours at $10 + 2 h of a $4,000 month
    assert before == _fresh_report_usd(sqlite_engine, tmp_path, old, "a.db")
    assert after == _fresh_report_usd(sqlite_engine, tmp_path, new, "b.db")


def test_reports_never_write_and_price_unstored_hours_in_memory(sqlite_engine: Engine) -> None:
    from sqlalchemy import func, select

    from agent.store.schema import cost_hours

    steady_host(sqlite_engine)
    recompute_ledger(sqlite_engine, cost_settings(), T0, T0 + H, "h1")  # the agent stored the first hour only
    report = build_report(sqlite_engine, cost_settings(), timedelta(hours=2), "h1", now=T0 + 2 * H)
    assert report.total.allocation.total_usd == Decimal("7.2")  # both hours, the second measured in memory
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cost_hours)).scalar() == 1


def test_price_changes_must_be_in_date_order() -> None:
    with pytest.raises(ValueError, match="increasing order"):
        PricingSettings(changes=(PricingChange(effective_from=date(2026, 9, 1), gpu_hourly_usd=Decimal(1)),
                                 PricingChange(effective_from=date(2026, 8, 1), gpu_hourly_usd=Decimal(2))))


def test_a_fleet_overhead_declared_once_is_shared_by_gpu_seconds_and_adds_up() -> None:
    from dataclasses import replace

    # $730/month for the whole fleet = $1 an hour, shared 2:1 by GPU-seconds held (2 GPUs and 1 GPU).
    a = hour_measure(T0)
    b = replace(hour_measure(T0, gpus=1), host="h2")
    settings = cost_settings(fleet_overhead_usd_per_month=Decimal(730))
    rows, segments = price_rows([a, b], {}, settings, ())
    assert {r.host: r.overhead_usd for r in rows} == {"h1": Decimal("0.666667"), "h2": Decimal("0.333333")}
    assert sum(r.overhead_usd for r in rows) == Decimal(1)
    assert "fleet overhead $730/month shared by GPU-seconds held" in segments[0].description
    # A report on h2 alone still gets h2's share (the weights are every host's).
    (only_b,), _ = price_rows([b], {}, settings, (), fleet=[a, b])
    assert only_b.overhead_usd == Decimal("0.333333")
