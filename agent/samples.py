"""Frozen value types that flow between parts: collectors and the proxy produce them, the runner
hands them to the store and to the latest-values snapshot that exporters read.

Values are in base units (seconds, bytes, watts, joules, ratios 0..1) and named the way they are
exported, without the `campwatch_<area>_` prefix: `power_watts`, `energy_joules_total`.
A value that the source does not provide is absent from `values`, never zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

Labels: TypeAlias = tuple[tuple[str, str], ...]


def labels(**pairs: object) -> Labels:
    """Label pairs in a canonical (sorted) order, values as strings."""
    return tuple(sorted((k, str(v)) for k, v in pairs.items()))




@dataclass(frozen=True, slots=True)
class GpuSample:
    """One reading of one GPU. `up=False` rows record that the GPU could not be read."""

    ts: datetime
    host: str
    gpu_index: int
    uuid: str
    model: str
    up: bool
    values: Mapping[str, float] = field(default_factory=dict)
    pci_bus_id: str = ""
    simulated: bool = False


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """A cumulative histogram as scraped: (upper bound, cumulative count) pairs, +Inf last."""

    buckets: tuple[tuple[float, float], ...]
    sum: float
    count: float


@dataclass(frozen=True, slots=True)
class Point:
    """One exported value: a metric family name from the catalog, its labels and value.

    A point of a histogram family carries the whole histogram in `histogram` (cumulative buckets,
    sum, count) and its count as `value`; both exporters render it from there."""

    name: str
    value: float
    labels: Labels = ()
    histogram: HistogramSnapshot | None = None


def with_label(labels_: Labels, key: str, value: str) -> Labels:
    """`labels_` with `key` added in canonical order (unchanged when `key` is already there)."""
    if any(k == key for k, _ in labels_):
        return labels_
    return tuple(sorted((*labels_, (key, value))))


@dataclass(frozen=True, slots=True)
class EngineSample:
    """One scrape of one (server, model, engine core). `up=False` rows mark a failed scrape."""

    ts: datetime
    host: str
    server: str
    kind: str
    model: str
    engine: str
    up: bool
    values: Mapping[str, float] = field(default_factory=dict)
    histograms: Mapping[str, HistogramSnapshot] = field(default_factory=dict)
    simulated: bool = False


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What the proxy saw of one request. Never holds prompt or output text."""

    ts: datetime
    host: str
    request_id: str
    upstream: str
    route: str
    method: str
    model: str
    status: int
    stream: bool
    caller: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    ttft_seconds: float | None = None
    latency_seconds: float = 0.0
    chunks: int = 0
    gap_mean_seconds: float | None = None
    gap_p99_seconds: float | None = None
    gap_max_seconds: float | None = None
    finish_reason: str | None = None
    output_chars: int | None = None
    refusal: bool | None = None
    json_requested: bool = False
    json_valid: bool | None = None
    non_ascii_ratio: float | None = None
    error: str | None = None
    simulated: bool = False
    team: str | None = None
    """The request's team header (capture.team_header), for cost attribution."""
    reasoning_tokens: int | None = None  # part of completion_tokens (usage's *_tokens_details)


@dataclass(frozen=True, slots=True)
class CapturedOutput:
    """A sampled, redacted output kept for drift investigation (only when capture.store_text)."""

    ts: datetime
    host: str
    request_id: str
    model: str
    text: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class DriftResult:
    """One drift test of one feature for one model: current window against a reference window."""

    ts: datetime
    host: str
    model: str
    feature: str
    method: str
    score: float
    threshold: float
    drifted: bool
    window_start: datetime
    window_end: datetime
    reference_start: datetime
    reference_end: datetime
    n_reference: int
    n_current: int
    details: str = "{}"


Row: TypeAlias = GpuSample | EngineSample | RequestRecord | CapturedOutput | DriftResult


@dataclass(frozen=True, slots=True)
class Collected:
    """What one collector tick produced: rows to store and points to expose.

    The points replace everything the same source exposed before (so a failed scrape leaves a
    gap, not stale values)."""

    source: str
    rows: tuple[Row, ...] = ()
    points: tuple[Point, ...] = ()
