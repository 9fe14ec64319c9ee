"""histogram_quantile as PromQL computes it (promql/quantile.go, classic buckets), so campwatch's
p50/p90/p99 match what a Prometheus query over the same buckets would show."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

_SMALL_DELTA = 1e-12  # PromQL's smallDeltaTolerance: float noise between buckets is not an increase
_MIN_NORMAL = 2.2250738585072014e-308


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The q-quantile (0..1) from (upper bound, cumulative count) pairs; None where PromQL gives NaN
    (no +Inf bucket, fewer than two buckets, no observations)."""
    return histogram_quantiles((q,), buckets)[0]


def histogram_quantiles(qs: Sequence[float], buckets: Iterable[tuple[float, float]]) -> list[float | None]:
    """Several quantiles of one histogram, preparing its buckets once."""
    merged: dict[float, float] = {}
    for bound, count in buckets:
        merged[bound] = merged.get(bound, 0.0) + count
    bounds = sorted(merged)
    if len(bounds) < 2 or not math.isinf(bounds[-1]) or bounds[-1] < 0:
        return [_out_of_range(q) for q in qs]
    counts = [merged[b] for b in bounds]
    _ensure_monotonic(counts)
    return [_quantile(q, bounds, counts) for q in qs]


def _out_of_range(q: float) -> float | None:
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    return None


def _quantile(q: float, bounds: list[float], counts: list[float]) -> float | None:
    if math.isnan(q) or q < 0 or q > 1:
        return _out_of_range(q)
    observations = counts[-1]
    if observations <= 0:
        return None
    rank = q * observations
    b = 0
    last = len(bounds) - 1
    while b < last and counts[b] < rank:
        b += 1
    if b == last:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start = 0.0
    end = bounds[b]
    count = counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    if count == 0:
        return None
    return start + (end - start) * (rank / count)


def _ensure_monotonic(counts: list[float]) -> None:
    prev = counts[0]
    for i in range(1, len(counts)):
        cur = counts[i]
        if cur == prev:
            continue
        if _almost_equal(prev, cur) or cur < prev:
            counts[i] = prev
            continue
        prev = cur


def _almost_equal(a: float, b: float) -> bool:
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < _MIN_NORMAL:
        return diff < _SMALL_DELTA * _MIN_NORMAL
    return diff / abs_sum < _SMALL_DELTA
