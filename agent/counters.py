"""Reset-safe arithmetic on cumulative counters and histograms, the one place the reset rule lives.

A counter that goes down means its source restarted (a server restart, a driver reload) and counted
again from zero, so the new reading itself is the increase since the reset (PromQL's rule). Keeping
a reset-adjusted running total per series makes every window's increase a single subtraction, and
the adjusted total can only grow: no negative rates, and no spike when a restarted server's small
counters meet a large pre-restart baseline."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def increase(previous: float | None, current: float | None) -> float:
    """The increase between two readings of a counter: a decrease means the counter was reset, so
    the new reading itself is the increase since the reset (as PromQL's increase() assumes)."""
    if previous is None or current is None:
        return 0.0
    return current - previous if current >= previous else current


def total_increase(readings: Iterable[float | None]) -> float:
    """Total increase over consecutive readings of one counter (missing readings skipped), drops
    counted as resets."""
    total = 0.0
    previous: float | None = None
    for value in readings:
        if value is None:
            continue
        if previous is not None:
            total += increase(previous, value)
        previous = value
    return total


def adjusted_total(prev_raw: float | None, prev_adjusted: float, raw: float) -> float:
    """The reset-adjusted running total after observing `raw`.

    The first observation of a series (`prev_raw` None) starts the total at its raw value, so a
    counter that was already large when first seen contributes no increase."""
    if prev_raw is None:
        return raw
    return prev_adjusted + increase(prev_raw, raw)


def rate(samples: Sequence[tuple[float, float]]) -> float | None:
    """Per-second increase over (time, raw value) readings; None with fewer than two or no time span."""
    if len(samples) < 2:
        return None
    span = samples[-1][0] - samples[0][0]
    if span <= 0:
        return None
    return total_increase(value for _, value in samples) / span


def histogram_was_reset(prev: Sequence[float], cur: Sequence[float]) -> bool:
    """True when any cumulative bucket (or the count) went down: the histogram restarted."""
    return any(c < p for p, c in zip(prev, cur, strict=True))


def adjusted_buckets(prev_raw: Sequence[float] | None, prev_adjusted: Sequence[float],
                     raw: Sequence[float]) -> tuple[float, ...]:
    """Reset-adjusted cumulative bucket counts for one histogram with an unchanged bucket layout.

    A histogram restarts as a whole, so one bucket going down resets every bucket."""
    if prev_raw is None:
        return tuple(raw)
    if histogram_was_reset(prev_raw, raw):
        return tuple(a + r for a, r in zip(prev_adjusted, raw, strict=True))
    return tuple(a + (r - p) for a, p, r in zip(prev_adjusted, prev_raw, raw, strict=True))
