"""Reset-safe arithmetic on cumulative counters (a server restart or driver reload resets them)."""

from __future__ import annotations

from collections.abc import Iterable


def increase(previous: float | None, current: float | None) -> float:
    """The increase between two readings of a counter: a decrease means the counter was reset, so
    the new reading itself is the increase since the reset (as PromQL's increase() assumes)."""
    if previous is None or current is None:
        return 0.0
    return current - previous if current >= previous else current


def total_increase(readings: Iterable[float | None]) -> float:
    total = 0.0
    previous: float | None = None
    for value in readings:
        if value is None:
            continue
        if previous is not None:
            total += increase(previous, value)
        previous = value
    return total
