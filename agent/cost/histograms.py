"""Cumulative token-size histograms: parse the stored JSON, difference them, add them, split them.

Stored form (agent/store/schema.py engine_samples.histograms):
{"request_prompt_tokens": {"buckets": [[le, cumulative_count], ...], "sum": s, "count": n}, ...}
with +Inf written as "+Inf", "Infinity" or a float."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from agent.counters import histogram_was_reset
from agent.samples import HistogramSnapshot

PROMPT = "request_prompt_tokens"
GENERATION = "request_generation_tokens"


def parse_histograms(text: str | None, names: Sequence[str] = (PROMPT, GENERATION)) -> dict[str, HistogramSnapshot]:
    """The named histograms (default: the token ones) in a stored JSON text; malformed entries are
    skipped (a data gap)."""
    if not text:
        return {}
    try:
        raw: Any = json.loads(text)
    except ValueError:
        return {}
    out: dict[str, HistogramSnapshot] = {}
    if not isinstance(raw, Mapping):
        return out
    for name in names:
        entry = raw.get(name)
        if not isinstance(entry, Mapping):
            continue
        try:
            buckets = tuple((float(le), float(count)) for le, count in entry["buckets"])
            out[name] = HistogramSnapshot(buckets=buckets, sum=float(entry["sum"]), count=float(entry["count"]))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def counts_of(text: str | None) -> dict[str, float]:
    """The observation count of each token histogram in a stored JSON text (no buckets built)."""
    if not text:
        return {}
    try:
        raw: Any = json.loads(text)
        return {name: float(raw[name]["count"]) for name in (PROMPT, GENERATION)
                if isinstance(raw, Mapping) and isinstance(raw.get(name), Mapping) and "count" in raw[name]}
    except (ValueError, TypeError):
        return {}


def _bounds(h: HistogramSnapshot) -> tuple[float, ...]:
    return tuple(le for le, _ in h.buckets)


def delta(current: HistogramSnapshot, previous: HistogramSnapshot | None) -> HistogramSnapshot:
    """What was observed between two cumulative snapshots; a reset (count went down or the
    bucket layout changed) means the current snapshot is all new."""
    if previous is None or _bounds(current) != _bounds(previous) or histogram_was_reset(
            (previous.count, *(c for _, c in previous.buckets)), (current.count, *(c for _, c in current.buckets))):
        return current
    return HistogramSnapshot(
        buckets=tuple((le, c - p) for (le, c), (_, p) in zip(current.buckets, previous.buckets, strict=True)),
        sum=max(current.sum - previous.sum, 0.0),
        count=current.count - previous.count,
    )


def cumulative_at(h: HistogramSnapshot, x: float) -> float:
    """Estimated number of observations <= x (linear within a bucket, 0 as the first lower bound)."""
    lower, below = 0.0, 0.0
    for le, count in h.buckets:
        if x < le:
            if math.isinf(le) or le <= lower:
                return below
            return below + (count - below) * max(x - lower, 0.0) / (le - lower)
        lower, below = le, count
    return below


def add(a: HistogramSnapshot | None, b: HistogramSnapshot) -> HistogramSnapshot:
    """Sum of two histograms; on different layouts, over the union of bounds (interpolated)."""
    if a is None:
        return b
    if _bounds(a) == _bounds(b):
        buckets = tuple((le, ca + cb) for (le, ca), (_, cb) in zip(a.buckets, b.buckets, strict=True))
    else:
        bounds = sorted(set(_bounds(a)) | set(_bounds(b)))
        buckets = tuple(
            (le, a.count + b.count if math.isinf(le) else cumulative_at(a, le) + cumulative_at(b, le))
            for le in bounds
        )
    return HistogramSnapshot(buckets=buckets, sum=a.sum + b.sum, count=a.count + b.count)


def split_by_thresholds(h: HistogramSnapshot, thresholds: Sequence[int]) -> list[tuple[float, float]]:
    """(requests, tokens) per band: band k holds observations v with thresholds[k-1] < v <= thresholds[k].

    Counts split linearly within a bucket; tokens are estimated at the middle of each piece and then
    scaled so that they add up to the histogram's exact sum. Observations in the +Inf bucket go to
    the band of that bucket's lower bound."""
    edges = sorted(thresholds)
    bands = [[0.0, 0.0] for _ in range(len(edges) + 1)]
    lower, below = 0.0, 0.0
    for le, cumulative in h.buckets:
        count = max(cumulative - below, 0.0)
        if count > 0:
            if math.isinf(le) or le <= lower:
                at = lower if math.isinf(le) else le
                band = _band(edges, at)
                bands[band][0] += count
                bands[band][1] += count * at
            else:
                cuts = [lower, *(e for e in edges if lower < e < le), le]
                for a, b in itertools.pairwise(cuts):
                    share = count * (b - a) / (le - lower)
                    band = _band(edges, b)
                    bands[band][0] += share
                    bands[band][1] += share * (a + b) / 2
        if not math.isinf(le):
            lower = le
        below = max(cumulative, below)
    estimated = sum(tokens for _, tokens in bands)
    scale = h.sum / estimated if estimated > 0 else 0.0
    if estimated <= 0 and h.sum > 0 and h.count > 0:
        # No usable buckets: put everything in the band of the mean.
        mean_band = _band(edges, h.sum / h.count)
        bands = [[0.0, 0.0] for _ in range(len(edges) + 1)]
        bands[mean_band] = [h.count, h.sum]
        scale = 1.0
    return [(requests, tokens * scale) for requests, tokens in bands]


def _band(edges: Sequence[int], value: float) -> int:
    """Index of the band of an observation: the number of thresholds it exceeds."""
    return sum(1 for e in edges if value > e)
