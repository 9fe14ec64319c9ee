"""Fixed periods with coverage, verdict guard rails, time-of-day prices named, request buckets (issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner
from genai_prices import data as genai_data
from genai_prices.types import ModelPrice, TieredPrices
from sqlalchemy import Engine

from agent.cli import main
from agent.config import BaselineSettings
from agent.cost.baselines import price_groups, resolve_baselines
from agent.cost.ledger import recompute_ledger
from agent.cost.measures import INPUT_EDGES, bucket_of, group_requests
from agent.cost.report import Totals, build_report, gaps_of, periods_of
from agent.cost.tokens import RequestTokens
from agent.errors import ConfigError
from agent.periods import parse_duration, resolve_period
from tests.cost.cost_helpers import T0, at, cost_settings, gpu_row, hour_measure, request_row, steady_host, write

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize("text", ["nand", "infd", "99999999d", "-3d", "0h", "d", "3x", "nan"])
def test_bad_since_values_are_one_clear_error(text: str) -> None:
    with pytest.raises(ConfigError, match="expected a duration like 90s"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["nand", "infd", "99999999d"])
def test_the_cli_rejects_bad_since_without_a_traceback(text: str) -> None:
    result = CliRunner().invoke(main, ["cost", "--db", "sqlite:///:memory:", "--since", text])
    assert result.exit_code == 2
    assert "--since" in result.output and "Traceback" not in result.output


def test_month_quarter_and_from_to_periods() -> None:
    q = resolve_period(quarter="2026Q3", now=NOW)
    assert (q.start, q.end, q.label, q.hours) == (datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC),
                                                  "2026-Q3", 2208)
    assert resolve_period(quarter="2026-Q4", now=NOW).end == datetime(2027, 1, 1, tzinfo=UTC)
    m = resolve_period(month="2026-12", now=NOW)
    assert (m.start, m.end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    r = resolve_period(from_="2026-10-01", to="2026-10-02T12:00:00+02:00", now=NOW)
    assert (r.start, r.end) == (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 2, 10, tzinfo=UTC))
    assert resolve_period(now=NOW).start == NOW - timedelta(days=30)
    for bad in ({"month": "2026-13"}, {"quarter": "2026Q5"}, {"from_": "yesterday"},
                {"from_": "2026-10-02", "to": "2026-10-01"}, {"month": "2026-10", "since": "3d"}):
        with pytest.raises(ConfigError):
            resolve_period(now=NOW, **bad)


def test_a_quarter_with_one_month_of_data_is_marked_33_percent_partial(sqlite_engine: Engine) -> None:
    # GPU samples every 10 minutes through September only (30 days = 720 of Q3's 2,208 hours).
    start = datetime(2026, 9, 1, tzinfo=UTC)
    write(sqlite_engine, "gpu", [gpu_row(start + timedelta(minutes=10 * i), util=0.5)
                                 for i in range(30 * 24 * 6 + 1)])
    period = resolve_period(quarter="2026Q3", now=NOW)
    report = build_report(sqlite_engine, cost_settings(), start=period.start, end=period.end,
                          period_label=period.label)
    (quarter,) = [p for p in report.periods if p.period == "quarter"]
    assert (quarter.label, quarter.hours_with_data, quarter.hours_in_period) == ("2026-Q3", 720, 2208)
    assert f"{quarter.coverage:.0%}" == "33%" and quarter.partial
    (september,) = [p for p in report.periods if p.period == "month"]
    assert september.coverage == 1.0 and not september.partial


def test_a_five_second_run_gives_insufficient_data_not_a_verdict(sqlite_engine: Engine) -> None:
    write(sqlite_engine, "gpu", [gpu_row(at(s), util=0.9) for s in range(6)])
    write(sqlite_engine, "requests", [request_row(at(s + 0.5), 500, 100, n=s) for s in range(4)])
    report = build_report(sqlite_engine, cost_settings(), timedelta(hours=1), "h1", now=T0 + timedelta(hours=1))
    (verdict,) = report.total.verdicts
    assert verdict.state == "unknown"
    assert verdict.reasons[0].startswith("insufficient data: 0.00 hours, 2,400 tokens; need 1 hours and "
                                         "100,000 tokens")


def test_the_insufficient_data_verdict_prints_no_empty_baseline_lines(sqlite_engine: Engine) -> None:
    from rich.console import Console

    from agent.cost.render import render_report

    write(sqlite_engine, "gpu", [gpu_row(at(s), util=0.9) for s in range(6)])
    write(sqlite_engine, "requests", [request_row(at(s + 0.5), 500, 100, n=s) for s in range(4)])
    report = build_report(sqlite_engine, cost_settings(), timedelta(hours=1), "h1", now=T0 + timedelta(hours=1))
    console = Console(record=True, width=200)
    render_report(console, report)
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert [line for line in lines if line.endswith(":") and line.split(":")[0] in
            {v.baseline for v in report.total.verdicts}] == []
    assert sum(line.startswith("insufficient data: 0.00 hours") for line in lines) == 1


def test_zero_length_gaps_are_not_gaps() -> None:
    tiny = Totals(hours=1, held_seconds=3600, allocated_gpu_seconds=3600, gpu_gap_seconds=1e-05,
                  engine_gap_seconds=1e-05, prompt_tokens=10)
    assert gaps_of("h1", tiny, (), ()) == ()
    real = Totals(hours=1, held_seconds=3600, allocated_gpu_seconds=3600, engine_gap_seconds=4.25, prompt_tokens=10)
    (gap,) = gaps_of("h1", real, (), ())
    assert "for 4.2 s" in gap.message  # seconds below 10 keep a decimal, never "0 s"


def test_the_off_peak_boundary_at_1630_utc_is_named_with_its_share_of_tokens(sqlite_engine: Engine) -> None:
    (deepseek,) = resolve_baselines(cost_settings(baselines=(BaselineSettings(provider="deepseek",
                                                                              model="deepseek-chat"),)))
    day = datetime(2026, 3, 2, tzinfo=UTC)
    records = [RequestTokens(day.replace(hour=16, minute=29, second=59), 200, 1_000_000, 0),
               RequestTokens(day.replace(hour=16, minute=30), 200, 3_000_000, 0)]
    result = price_groups(deepseek, group_requests("h1", records))
    # 1 Mtok at the peak input rate ($0.27) + 3 Mtok off-peak ($0.135).
    assert result.price.total_usd == Decimal("0.27") + 3 * Decimal("0.135")
    assert result.tokens_by_price == (("off-peak 16:30-00:30 UTC", 3_000_000), ("peak 00:30-16:30 UTC", 1_000_000))
    # The same through the store and the report: the API table names the prices and their shares.
    write(sqlite_engine, "gpu", [gpu_row(day.replace(hour=16) + timedelta(minutes=m), util=0.5) for m in range(61)])
    write(sqlite_engine, "requests", [request_row(r.ts, r.prompt_tokens, 0, n=i) for i, r in enumerate(records)])
    settings = cost_settings(baselines=(BaselineSettings(provider="deepseek", model="deepseek-chat"),))
    recompute_ledger(sqlite_engine, settings, day, day + timedelta(days=1))
    report = build_report(sqlite_engine, settings, start=day, end=day + timedelta(days=1))
    (api,) = report.total.api
    assert api.price_shares == (("off-peak 16:30-00:30 UTC", 0.75), ("peak 00:30-16:30 UTC", 0.25))
    assert api.priced.total_usd == result.price.total_usd


def test_every_genai_prices_tier_threshold_is_a_bucket_edge() -> None:
    starts: set[int] = set()
    for provider in genai_data.providers:
        for model in provider.models:
            options = model.prices if isinstance(model.prices, list) else [model.prices]
            for option in options:
                price = getattr(option, "prices", option)
                if isinstance(price, ModelPrice):
                    starts |= {t.start for v in vars(price).values() if isinstance(v, TieredPrices) for t in v.tiers}
    assert starts <= set(INPUT_EDGES)
    assert bucket_of(200_000) == (200_000, 200_000)  # edge 199,999: input > 199,999 pays that tier
    assert bucket_of(200_001) == (200_001, 256_000)
    assert bucket_of(0) == (0, 256)


def test_periods_carry_coverage_per_day() -> None:
    from agent.cost.pricing import price_rows

    rows, _ = price_rows([hour_measure(T0)], {}, cost_settings(), ())
    (day,) = [p for p in periods_of(rows, Decimal(4)) if p.period == "day"]
    assert (day.hours_with_data, day.hours_in_period, day.partial) == (1, 24, True)


def test_engine_only_tokens_are_reported_unattributed(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine)
    write(sqlite_engine, "requests", [request_row(at(100), 1000, 250)])
    report = build_report(sqlite_engine, cost_settings(), timedelta(hours=2), "h1", now=T0 + timedelta(hours=2))
    assert report.total.totals.unattributed_tokens == report.total.totals.tokens - 1250
    assert any(g.kind == "unattributed" for g in report.total.gaps)
