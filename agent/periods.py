"""Durations, quarters and report periods, parsed in this one place (pure, ground floor): `--since
30d`, `--from/--to` (dates or ISO timestamps, UTC when no offset is given), `--month 2026-10`,
`--quarter 2026Q3` (or 2026-Q3), the engine's SLI windows and the cost plan's quarters. The
command-line forms raise one ConfigError naming the option; `duration_seconds` and `parse_quarter`
raise ValueError for callers that collect problems (settings, window lists)."""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from agent.errors import ConfigError, Problem
from agent.utc import as_utc

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DAYS = 36_600
"""A window longer than a century is a typo, not a report."""
_QUARTER = re.compile(r"^(\d{4})-?[Qq]([1-4])$")
_WHOLE = re.compile(r"^[1-9][0-9]*$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in UTC; `label` is what the report calls it."""

    start: datetime
    end: datetime
    label: str

    @property
    def hours(self) -> int:
        return math.ceil((self.end - self.start).total_seconds() / 3600)


def _error(option: str, message: str) -> ConfigError:
    return ConfigError("command line", [Problem(option, message)])


def duration_seconds(text: str, *, units: str = "smhdw", whole: bool = False) -> float:
    """Seconds in a number and a unit ('90s', '15m', '12h', '30d', '2w', '1.5h'): a positive finite
    number, and with `whole` a whole one written without leading zeros (a label kept as written).
    ValueError naming the input and what was expected otherwise."""
    raw = text.strip()
    number, unit = raw[:-1], raw[-1:]
    value = math.nan
    if unit and unit in units and (not whole or _WHOLE.match(number)):
        with contextlib.suppress(ValueError):
            value = float(number)
    if not (math.isfinite(value) and value > 0):
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"expected a duration: {kind} and one of the units {', '.join(units)} "
                         f"(like 90s, 15m or 12h), got {text!r}")
    return value * UNITS[unit]


def parse_duration(text: str, option: str = "--since") -> timedelta:
    """'90s', '15m', '12h', '30d', '2w' -> timedelta."""
    expected = f"expected a duration like 90s, 15m, 12h, 30d or 2w (at most {MAX_DAYS:,} days), got {text!r}"
    try:
        seconds = duration_seconds(text)
    except ValueError:
        raise _error(option, expected) from None
    if seconds > MAX_DAYS * 86400:
        raise _error(option, expected)
    return timedelta(seconds=seconds)


def parse_instant(text: str, option: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 timestamp (UTC unless it has an offset)."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            d = date.fromisoformat(raw)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        ts = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _error(option, f"expected a date like 2026-10-01 or a timestamp like 2026-10-01T12:00:00Z, "
                             f"got {text!r}") from None
    return as_utc(ts)


def month_period(text: str, option: str = "--month") -> Period:
    found = _MONTH.match(text.strip())
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise _error(option, f"expected a month like 2026-10, got {text!r}")
    year, month = int(found.group(1)), int(found.group(2))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), 1 if month == 12 else month + 1, 1, tzinfo=UTC)
    return Period(start, end, f"{year}-{month:02d}")


def parse_quarter(text: str) -> tuple[int, int]:
    """(year, quarter) of '2026Q3', '2026-Q3' or '2026q3'; ValueError naming the input otherwise."""
    found = _QUARTER.match(text.strip())
    if not found:
        raise ValueError(f"expected a quarter like 2026Q3 or 2026-Q3, got {text!r}")
    return int(found.group(1)), int(found.group(2))


def quarter_label(year: int, q: int) -> str:
    """The one spelling of a quarter in reports, plans and notebooks: 2026-Q3."""
    return f"{year}-Q{q}"


def quarter_period(text: str, option: str = "--quarter") -> Period:
    try:
        year, q = parse_quarter(text)
    except ValueError as exc:
        raise _error(option, str(exc)) from None
    return _quarter(year, q)


def quarter_of(moment: datetime) -> Period:
    """The calendar quarter (in UTC) that `moment` falls in; a naive moment is taken as UTC."""
    moment = as_utc(moment)
    return _quarter(moment.year, (moment.month - 1) // 3 + 1)


def _quarter(year: int, q: int) -> Period:
    start = datetime(year, 3 * (q - 1) + 1, 1, tzinfo=UTC)
    end = datetime(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1, tzinfo=UTC)
    return Period(start, end, quarter_label(year, q))


def resolve_period(*, since: str | None = None, from_: str | None = None, to: str | None = None,
                   month: str | None = None, quarter: str | None = None, now: datetime,
                   default_since: str = "30d") -> Period:
    """The one period the options name; at most one of since, month, quarter and from/to."""
    chosen = [name for name, value in (("--since", since), ("--month", month), ("--quarter", quarter),
                                       ("--from/--to", from_ or to)) if value]
    if len(chosen) > 1:
        raise _error(" ".join(chosen), "expected one way of giving the period, got " + " and ".join(chosen))
    now = as_utc(now)
    if month:
        return month_period(month)
    if quarter:
        return quarter_period(quarter)
    if from_ or to:
        start = parse_instant(from_, "--from") if from_ else None
        end = parse_instant(to, "--to") if to else now
        if start is None:
            raise _error("--from", "expected --from with --to (the start of the period)")
        if end <= start:
            raise _error("--from/--to", f"expected --from before --to, got {start.isoformat()} and "
                                        f"{end.isoformat()}")
        return Period(start, end, f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC")
    text = since or default_since
    window = parse_duration(text)
    return Period(now - window, now, f"last {text}")
