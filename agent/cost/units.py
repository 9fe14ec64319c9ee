"""Time and money units shared by the cost engine.

Money is Decimal USD. A month is 730 hours (365 x 24 / 12), the convention of cloud price lists."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from agent.utc import as_utc

HOUR = timedelta(hours=1)
HOUR_SECONDS = 3600.0
MONTH_SECONDS = 730 * 3600.0
MTOK = Decimal(1_000_000)
JOULES_PER_KWH = Decimal(3_600_000)
CENT_MICROS = Decimal("0.000001")
"""Ledger money is stored with 6 decimals (Numeric(18, 6))."""


def dec(value: float | int | Decimal) -> Decimal:
    """A float as the Decimal of its shortest repr (0.1 -> Decimal('0.1'), not the binary expansion)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    return Decimal(repr(value))


def micros(value: Decimal) -> Decimal:
    """Round money to the ledger's 6 decimals."""
    return value.quantize(CENT_MICROS, rounding=ROUND_HALF_EVEN)


def hour_floor(ts: datetime) -> datetime:
    ts = as_utc(ts)
    return ts.replace(minute=0, second=0, microsecond=0)


def hour_ceil(ts: datetime) -> datetime:
    floor = hour_floor(ts)
    return floor if floor == as_utc(ts) else floor + HOUR


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """Hour starts h with [h, h+1h) overlapping [start, end)."""
    hours: list[datetime] = []
    hour = hour_floor(start)
    end = as_utc(end)
    while hour < end:
        hours.append(hour)
        hour += HOUR
    return hours


def per_mtok(usd: Decimal, tokens: int | float) -> Decimal | None:
    """USD per million tokens, or None when there were no tokens (unknown, never zero)."""
    if tokens <= 0:
        return None
    return usd * MTOK / dec(tokens)
