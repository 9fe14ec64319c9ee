"""Measured capacity: a pool's sustainable output tokens/s per GPU at saturation within the SLOs (pure).

Method (docs/cost.md, "Measured capacity"): the engine history is cut into windows (default 5 min).
A window is *saturated* when requests were queueing (mean waiting >= cost.capacity_min_waiting):
the engine then serves as fast as it can, so its output rate is its throughput. A saturated window
counts when its TTFT p99 and inter-token p99 (from the difference of the cumulative histograms)
are within cost.slo_ttft_p99_s and cost.slo_itl_p99_s: faster than that breaks the SLO. The
estimate is the median output rate of those windows per GPU; the confidence is their number and
their spread (interquartile range / median), with the periods they came from. Fewer than
cost.capacity_min_windows such windows give "not enough high-load data", never a guess."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from agent.cost import histograms as hist
from agent.counters import increase
from agent.quantile import histogram_quantile
from agent.samples import HistogramSnapshot

TTFT = "ttft_seconds"
ITL = "inter_token_latency_seconds"
Confidence = Literal["high", "medium", "low"]
MIN_COVERAGE = 0.5
"""A window counts only when scrapes cover at least half of it (seconds of every series added)."""


@dataclass(frozen=True, slots=True)
class LoadReading:
    """One engine scrape of one series, as the capacity estimate needs it."""

    ts: datetime
    series: str
    up: bool
    generation_tokens_total: float | None
    requests_waiting: float | None
    histograms_text: str | None = None
    """Stored histogram JSON; parsed only at window edges."""
    row_id: int = 0
    """The stored row's id, to read the histograms of the window edges alone (edge_ids)."""


@dataclass(frozen=True, slots=True)
class LoadWindow:
    """What a pool's engines did in one window (every series summed)."""

    start: datetime
    seconds: float
    """Seconds covered by scrapes."""
    output_tokens: float
    waiting_avg: float | None
    ttft_p99_s: float | None
    itl_p99_s: float | None

    @property
    def output_tokens_per_s(self) -> float:
        return self.output_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Slo:
    ttft_p99_s: float
    itl_p99_s: float
    min_waiting: float = 1.0
    min_windows: int = 6


@dataclass(frozen=True, slots=True)
class Capacity:
    """A pool's measured capacity, or why there is none (tokens_per_s_per_gpu None)."""

    pool: str
    gpus: int
    tokens_per_s_per_gpu: float | None
    """Output tokens/s per GPU at saturation within the SLOs."""
    windows: int
    """Saturated windows within the SLOs the estimate rests on."""
    saturated_windows: int
    slo_broken_windows: int
    unchecked_windows: int
    """Saturated windows without TTFT or inter-token histograms (the SLO could not be checked)."""
    spread: float | None
    """Interquartile range / median of the windows' rates."""
    confidence: Confidence | None
    periods: tuple[tuple[datetime, datetime], ...]
    """The runs of consecutive windows the estimate came from (first 20)."""
    reason: str


def _parsed(text: str | None) -> Mapping[str, HistogramSnapshot]:
    return hist.parse_histograms(text, names=(TTFT, ITL))


def _p99(h: HistogramSnapshot | None) -> float | None:
    if h is None or h.count <= 0:
        return None
    value = histogram_quantile(0.99, h.buckets)
    return value if value is not None and math.isfinite(value) else None


def _by_series(readings: Iterable[LoadReading]) -> list[tuple[list[LoadReading], list[float]]]:
    """Each series' up scrapes in time order, with their epoch times."""
    by_series: dict[str, list[LoadReading]] = defaultdict(list)
    for r in readings:
        if r.up:
            by_series[r.series].append(r)
    out = []
    for series in by_series.values():
        series.sort(key=lambda r: r.ts)
        out.append((series, [r.ts.timestamp() for r in series]))
    return out


def _windows_of(times: Sequence[float], window_s: float) -> list[float]:
    """The window of each interval (times[i], times[i+1]]: the one holding its midpoint."""
    out = []
    for ta, tb in itertools.pairwise(times):
        mid = (ta + tb) / 2
        out.append(mid - mid % window_s)
    return out


def _edges(series: Sequence[LoadReading], windows: Sequence[float], busy: set[float] | None
           ) -> list[tuple[float, LoadReading, LoadReading]]:
    """(window, the scrape before it, its last scrape) for each window whose latency is wanted
    (all, or those in `busy`)."""
    last: dict[float, int] = {}
    for i, w in enumerate(windows):
        last[w] = i + 1
    out = []
    previous = series[0] if series else None
    for w in sorted(last):
        edge = series[last[w]]
        if previous is not None and (busy is None or w in busy):
            out.append((w, previous, edge))
        previous = edge
    return out


def _accumulate(grouped: Sequence[tuple[list[LoadReading], list[float]]], window_s: float
                ) -> tuple[dict[float, list[float]], list[list[float]]]:
    acc: dict[float, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])  # seconds, tokens, waiting sum, n
    per_series: list[list[float]] = []
    for series, times in grouped:
        windows = _windows_of(times, window_s)
        per_series.append(windows)
        for i, w in enumerate(windows):
            a, b = series[i], series[i + 1]
            slot = acc[w]
            slot[0] += times[i + 1] - times[i]
            slot[1] += increase(a.generation_tokens_total, b.generation_tokens_total)
            if b.requests_waiting is not None:
                slot[2] += b.requests_waiting
                slot[3] += 1
    return acc, per_series


def _busy(acc: Mapping[float, list[float]], min_waiting: float | None) -> set[float] | None:
    if min_waiting is None:
        return None
    return {w for w, (_, _, waiting, n) in acc.items() if n and waiting / n >= min_waiting}


def edge_ids(readings: Iterable[LoadReading], window_s: float = 300.0, min_waiting: float | None = None) -> set[int]:
    """Row ids of the scrapes whose histograms load_windows differences (with `min_waiting`, only
    around saturated windows): a 5 s scrape interval reads at most 2 in 60 histograms."""
    grouped = _by_series(readings)
    acc, per_series = _accumulate(grouped, window_s)
    busy = _busy(acc, min_waiting)
    ids: set[int] = set()
    for (series, _), series_windows in zip(grouped, per_series, strict=True):
        for _, before, edge in _edges(series, series_windows, busy):
            ids.add(before.row_id)
            ids.add(edge.row_id)
    return ids


def load_windows(readings: Iterable[LoadReading], window_s: float = 300.0,
                 min_waiting: float | None = None) -> list[LoadWindow]:
    """The pool's windows from raw scrapes: the interval between two consecutive up scrapes of a
    series belongs to the window holding its midpoint; histograms are differenced between the
    last scrapes of consecutive windows. With `min_waiting`, latency quantiles are computed only
    for the saturated windows (the only ones the estimate checks; the others get None)."""
    grouped = _by_series(readings)
    acc, per_series = _accumulate(grouped, window_s)
    busy = _busy(acc, min_waiting)
    ttft: dict[float, HistogramSnapshot] = {}
    itl: dict[float, HistogramSnapshot] = {}
    cache: tuple[int, Mapping[str, HistogramSnapshot]] | None = None
    for (series, _), series_windows in zip(grouped, per_series, strict=True):
        for w, before_r, edge in _edges(series, series_windows, busy):
            before = cache[1] if cache is not None and cache[0] == id(before_r) else _parsed(before_r.histograms_text)
            now = _parsed(edge.histograms_text)
            cache = (id(edge), now)  # consecutive busy windows: this edge is the next one's start
            for name, out in ((TTFT, ttft), (ITL, itl)):
                if name in now:
                    d = hist.delta(now[name], before.get(name))
                    out[w] = hist.add(out.get(w), d)
    windows: list[LoadWindow] = []
    for w in sorted(acc):
        seconds, tokens, waiting, n = acc[w]
        windows.append(LoadWindow(datetime.fromtimestamp(w, UTC), seconds, tokens,
                                  waiting / n if n else None, _p99(ttft.get(w)), _p99(itl.get(w))))
    return windows


def estimate_capacity(pool: str, windows: Sequence[LoadWindow], gpus: int, slo: Slo,
                      window_s: float = 300.0) -> Capacity:
    """The pool's capacity from its windows (see the module docstring)."""
    covered = [w for w in windows if w.seconds >= MIN_COVERAGE * window_s]
    saturated = [w for w in covered if w.waiting_avg is not None and w.waiting_avg >= slo.min_waiting]
    unchecked = [w for w in saturated if w.ttft_p99_s is None or w.itl_p99_s is None]
    checked = [w for w in saturated if w.ttft_p99_s is not None and w.itl_p99_s is not None]
    good = [w for w in checked if w.ttft_p99_s is not None and w.ttft_p99_s <= slo.ttft_p99_s
            and w.itl_p99_s is not None and w.itl_p99_s <= slo.itl_p99_s]
    broken = len(checked) - len(good)
    counts = (len(good), len(saturated), broken, len(unchecked))
    if gpus <= 0:
        return Capacity(pool, gpus, None, *counts, None, None, (),
                        f"{pool}: no GPUs measured, so no capacity per GPU.")
    if len(good) < slo.min_windows:
        return Capacity(pool, gpus, None, *counts, None, None, _periods(good, window_s),
                        f"{pool}: not enough high-load data: {len(good)} saturated window(s) within the SLOs "
                        f"(TTFT p99 <= {slo.ttft_p99_s:g} s, inter-token p99 <= {slo.itl_p99_s:g} s), "
                        f"need {slo.min_windows}; {len(saturated)} saturated, {broken} broke the SLO, "
                        f"{len(unchecked)} without latency histograms.")
    rates = sorted(w.output_tokens_per_s / gpus for w in good)
    median = statistics.median(rates)
    q1, _, q3 = statistics.quantiles(rates, n=4, method="inclusive")
    spread = (q3 - q1) / median if median > 0 else math.inf
    confidence: Confidence = ("high" if len(good) >= 24 and spread <= 0.15 else
                              "medium" if len(good) >= 12 and spread <= 0.3 else "low")
    periods = _periods(good, window_s)
    return Capacity(pool, gpus, median, *counts, spread, confidence, periods,
                    f"{pool}: {median:,.1f} output tokens/s per GPU at saturation within the SLOs, from "
                    f"{len(good)} windows in {len(periods)} period(s) (spread {spread:.0%}, {confidence} "
                    "confidence).")


def _periods(windows: Sequence[LoadWindow], window_s: float, limit: int = 20) -> tuple[tuple[datetime, datetime], ...]:
    runs: list[tuple[float, float]] = []
    for w in windows:
        start = w.start.timestamp()
        if runs and start <= runs[-1][1] + 1e-6:
            runs[-1] = (runs[-1][0], start + window_s)
        else:
            runs.append((start, start + window_s))
    return tuple((datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC)) for a, b in runs[:limit])


def fleet_capacity(capacities: Sequence[Capacity]) -> float | None:
    """Output tokens/s per GPU of several pools (weighted by their GPUs), None unless every pool has one."""
    if not capacities or any(c.tokens_per_s_per_gpu is None for c in capacities):
        return None
    gpus = sum(c.gpus for c in capacities)
    return sum((c.tokens_per_s_per_gpu or 0.0) * c.gpus for c in capacities) / gpus if gpus else None
