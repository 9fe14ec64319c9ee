"""When the answer flips: the date the monthly volume trend crosses each baseline's break-even (pure).

Model (docs/cost.md, "When the answer flips"): the monthly token volumes (each month's tokens
scaled to 730 h by its hours with data) are fitted by least squares against time, V(t) = a + b·t.
The break-even volume V* is the verdict's, from the prices in force at the report's end (the
effective-dated self-hosted prices and baseline discounts). The verdict flips when V(t) reaches
V*: from "holds" to "API cheaper" on a falling trend, the other way on a rising one. The interval
comes from the slope's 95 % confidence bounds (slope ± t·standard error); a bound at or past zero
slope leaves that end open. Fewer than `min_months` months, a flat trend, a trend moving away from
V*, or a break-even no volume reaches give no date, and say which."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

Direction = Literal["to_api", "to_self_hosting"]
DAY_SECONDS = 86400.0
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23}
"""Student's t, two-sided 95 %, by degrees of freedom (1.96 beyond)."""


@dataclass(frozen=True, slots=True)
class MonthVolume:
    month: datetime
    """Start of the month (UTC)."""
    tokens_per_month: float
    """The month's tokens scaled to 730 h by its hours with data."""


@dataclass(frozen=True, slots=True)
class Trend:
    """V(t) = intercept + slope·(days since `origin`), tokens per month."""

    origin: datetime
    intercept: float
    slope_per_day: float
    slope_stderr: float
    months: int

    def at(self, when: datetime) -> float:
        return self.intercept + self.slope_per_day * (when - self.origin).total_seconds() / DAY_SECONDS


@dataclass(frozen=True, slots=True)
class Flip:
    baseline: str
    flip_date: datetime | None
    earliest: datetime | None
    """The interval's near end (None: open)."""
    latest: datetime | None
    """The interval's far end (None: open, the trend may never get there)."""
    direction: Direction | None
    days_from_end: float | None
    reason: str


def fit_trend(months: Sequence[MonthVolume]) -> Trend | None:
    """Least squares over the months' midpoints; None with fewer than two months."""
    if len(months) < 2:
        return None
    origin = months[0].month
    xs = [((m.month - origin).total_seconds() + 15 * DAY_SECONDS) / DAY_SECONDS for m in months]
    ys = [m.tokens_per_month for m in months]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = my - slope * mx
    residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    stderr = math.sqrt(residual / (n - 2) / sxx) if n > 2 else math.inf
    return Trend(origin, intercept, slope, stderr, n)


def forecast_flip(baseline: str, trend: Trend | None, breakeven_tokens_per_month: Decimal | None,
                  reachable: bool, end: datetime, min_months: int = 3) -> Flip:
    """The date the trend crosses the break-even volume, after `end` (the report's end)."""
    def none(reason: str) -> Flip:
        return Flip(baseline, None, None, None, None, None, reason)

    if trend is None or trend.months < min_months:
        have = 0 if trend is None else trend.months
        return none(f"{baseline}: the trend gives no date: {have} month(s) of volume, need {min_months}.")
    if breakeven_tokens_per_month is None:
        return none(f"{baseline}: no break-even volume" + (" (the API costs less per token than the energy "
                                                           "alone)." if not reachable else "."))
    target = float(breakeven_tokens_per_month)
    now = trend.at(end)
    b = trend.slope_per_day
    above = now >= target
    direction: Direction = "to_api" if above else "to_self_hosting"
    if b == 0 or (above and b > 0) or (not above and b < 0):
        return none(f"{baseline}: the volume trend moves away from break-even ({_mtok(target)} Mtok/month): "
                    "no flip in sight.")
    t = _t95(trend.months - 2)

    def crossing(slope: float) -> datetime | None:
        if slope == 0 or (slope > 0) != (b > 0):
            return None  # that bound never gets there
        return end + timedelta(days=(target - now) / slope)

    when = crossing(b)
    assert when is not None
    steep, shallow = b + math.copysign(t * trend.slope_stderr, b), b - math.copysign(t * trend.slope_stderr, b)
    earliest, latest = crossing(steep), crossing(shallow) if math.isfinite(shallow) else None
    days = (when - end).total_seconds() / DAY_SECONDS
    words = "the API becomes cheaper" if direction == "to_api" else "self-hosting becomes cheaper"
    span = (f"{_day(earliest)} to {_day(latest) if latest else 'open (the slope may be zero)'}"
            if earliest else "open")
    return Flip(baseline, when, earliest, latest, direction, days,
                f"{baseline}: at the volume trend ({_mtok(b * 30.4375)} Mtok/month per month over {trend.months} "
                f"months) {words} around {_day(when)} (95 % interval {span}), when volume reaches "
                f"{_mtok(target)} Mtok/month.")


def _t95(df: int) -> float:
    return _T95.get(df, 1.96) if df > 0 else math.inf


def _day(when: datetime | None) -> str:
    return "—" if when is None else f"{when.astimezone(UTC):%Y-%m-%d}"


def _mtok(tokens: float) -> str:
    return f"{tokens / 1e6:,.1f}"
