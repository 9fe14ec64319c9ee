"""When the answer flips: a linear trend with a known crossing date, its interval, and no date when none."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from agent.cost.catalog import COST_METRICS
from agent.cost.forecast import MonthVolume, fit_trend, forecast_flip
from agent.cost.report import build_report, report_points
from tests.cost.cost_helpers import T0, cost_settings, steady_host

MONTHS = [datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3, 4)]
END = datetime(2026, 5, 1, tzinfo=UTC)


def linear(per_day: float, at_jan1: float) -> list[MonthVolume]:
    # Each month is placed at its start + 15 days: Jan 16, Feb 16, Mar 16, Apr 16 (days 15, 46, 74, 105).
    return [MonthVolume(m, at_jan1 + per_day * ((m - MONTHS[0]).days + 15)) for m in MONTHS]


def test_a_falling_linear_trend_flips_to_the_api_on_the_hand_computed_day() -> None:
    # V = 200 M - 1 M per day since Jan 1; break-even 50 M is reached on day 150, 2026-05-31, 30 days
    # after the report's end. A perfect line has no slope error: the interval is that day.
    trend = fit_trend(linear(-1e6, 200e6))
    assert trend is not None
    assert trend.slope_per_day == pytest.approx(-1e6)
    flip = forecast_flip("api", trend, Decimal(50_000_000), True, END)
    assert flip.direction == "to_api"
    assert flip.flip_date is not None and flip.flip_date.date() == datetime(2026, 5, 31).date()
    assert flip.days_from_end == pytest.approx(30)
    assert flip.earliest == flip.latest == flip.flip_date
    assert "the API becomes cheaper around 2026-05-31" in flip.reason


def test_a_rising_trend_below_break_even_flips_to_self_hosting() -> None:
    # V = 10 M + 0.5 M/day: at the end (day 120) 70 M; break-even 100 M on day 180 (2026-06-30).
    flip = forecast_flip("api", fit_trend(linear(0.5e6, 10e6)), Decimal(100_000_000), True, END)
    assert flip.direction == "to_self_hosting"
    assert flip.flip_date is not None and flip.flip_date.date() == datetime(2026, 6, 30).date()


def test_a_noisy_trend_gives_an_interval_around_the_date() -> None:
    months = linear(-1e6, 200e6)
    noisy = [dataclasses.replace(m, tokens_per_month=m.tokens_per_month + d) for m, d in
             zip(months, (3e6, -3e6, -3e6, 3e6), strict=True)]
    flip = forecast_flip("api", fit_trend(noisy), Decimal(50_000_000), True, END)
    assert flip.flip_date is not None and flip.earliest is not None
    assert flip.earliest < flip.flip_date
    assert flip.latest is None or flip.latest > flip.flip_date


def test_no_date_from_too_few_months_a_trend_moving_away_or_no_break_even() -> None:
    two = forecast_flip("api", fit_trend(linear(-1e6, 200e6)[:2]), Decimal(1), True, END)
    assert two.flip_date is None and "2 month(s) of volume, need 3" in two.reason
    away = forecast_flip("api", fit_trend(linear(1e6, 200e6)), Decimal(50_000_000), True, END)
    assert away.flip_date is None and "moves away" in away.reason
    never = forecast_flip("api", fit_trend(linear(-1e6, 200e6)), None, False, END)
    assert never.flip_date is None and "energy" in never.reason


def test_the_flip_is_exported_in_days_with_declared_labels(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine)
    report = build_report(sqlite_engine, cost_settings(), timedelta(hours=2), "h1", now=T0 + timedelta(hours=2))
    (flip,) = report.flips  # two hours of data: no trend, so no point
    assert flip.flip_date is None
    assert not [p for p in report_points(report) if p.name == "campwatch_verdict_flip_days"]
    dated = forecast_flip("openai/gpt-4o", fit_trend(linear(-1e6, 200e6)), Decimal(50_000_000), True, END)
    points = [p for p in report_points(dataclasses.replace(report, flips=(dated,)))
              if p.name == "campwatch_verdict_flip_days"]
    assert [p.value for p in points] == [pytest.approx(30)]
    spec = next(m for m in COST_METRICS if m.name == "campwatch_verdict_flip_days")
    assert {k for k, _ in points[0].labels} == set(spec.labels) == {"baseline", "host"}
