"""The proxy's running counters and histograms, published as snapshot points like every other part.

Requests update them under one lock (the event loop writes, an exporter thread reads); `points()`
turns them into Points of the PROXY_METRICS families at export time, so Prometheus and OTLP read the
same figures through the same snapshot."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Sequence

from agent.capture.catalog import LATENCY_BUCKETS, PROXY_METRICS, TTFT_BUCKETS
from agent.samples import HistogramSnapshot, Labels, Point

REQUESTS = "campwatch_proxy_requests_total"
TTFT = "campwatch_proxy_ttft_seconds"
LATENCY = "campwatch_proxy_latency_seconds"
TOKENS = "campwatch_proxy_tokens_total"
IN_FLIGHT = "campwatch_proxy_requests_in_flight"
ERRORS = "campwatch_proxy_errors_total"
RECORD_ERRORS = "campwatch_proxy_record_errors_total"
CAPTURED = "campwatch_proxy_outputs_captured_total"
CLIENT_ABORTS = "campwatch_proxy_client_aborts_total"

_DECLARED = frozenset(spec.name for spec in PROXY_METRICS)
_BUCKETS: dict[str, tuple[float, ...]] = {TTFT: TTFT_BUCKETS, LATENCY: LATENCY_BUCKETS}


class _Histogram:
    """Per-bucket (not cumulative) counts over fixed bounds plus an overflow bucket, sum and count."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound falls in that bound's bucket (le means <=)
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def snapshot(self) -> HistogramSnapshot:
        cumulative: list[tuple[float, float]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            cumulative.append((bound, float(running)))
        return HistogramSnapshot(tuple(cumulative), self.sum, float(self.count))


def _labels(names: Sequence[str], values: Sequence[str]) -> Labels:
    return tuple(sorted(zip(names, values, strict=True)))


class ProxyInstruments:
    """Counters and histograms of the proxy families; label tuples are built once per child."""

    def __init__(self) -> None:
        specs = {spec.name: spec for spec in PROXY_METRICS}
        published = {REQUESTS, TTFT, LATENCY, TOKENS, IN_FLIGHT, ERRORS, RECORD_ERRORS, CAPTURED, CLIENT_ABORTS}
        missing = published - _DECLARED
        if missing:  # a family the proxy publishes must be declared in the catalog
            raise ValueError(f"proxy families not in PROXY_METRICS: {sorted(missing)}")
        # host is the snapshot's to add; the proxy fills the family's other labels
        self._label_names = {name: tuple(n for n in spec.labels if n != "host") for name, spec in specs.items()}
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[str, ...]], list[float]] = {}
        self._histograms: dict[tuple[str, tuple[str, ...]], _Histogram] = {}
        self._label_cache: dict[tuple[str, tuple[str, ...]], Labels] = {}
        self.in_flight = 0
        """Requests being forwarded now (changed on the event loop only; read at export time)."""
        # Series that exist (at 0) before the first request, as they did under prometheus_client.
        for key in ((CAPTURED, ()), (TOKENS, ("prompt",)), (TOKENS, ("completion",)), (TOKENS, ("cached_prompt",))):
            self._counters[key] = [0.0]

    def _add(self, name: str, values: tuple[str, ...], amount: float = 1.0) -> None:
        key = (name, values)
        cell = self._counters.get(key)
        if cell is None:
            cell = self._counters[key] = [0.0]
        cell[0] += amount

    def _observe(self, name: str, values: tuple[str, ...], value: float) -> None:
        key = (name, values)
        hist = self._histograms.get(key)
        if hist is None:
            hist = self._histograms[key] = _Histogram(_BUCKETS[name])
        hist.observe(value)

    def observe(self, *, route: str, model: str, status: int, ttft: float | None, latency: float,
                prompt_tokens: int | None, completion_tokens: int | None, cached_tokens: int | None) -> None:
        with self._lock:
            self._add(REQUESTS, (route, model, str(status)))
            self._observe(LATENCY, (route, model), latency)
            if ttft is not None:
                self._observe(TTFT, (model,), ttft)
            if prompt_tokens:
                self._add(TOKENS, ("prompt",), prompt_tokens)
            if completion_tokens:
                self._add(TOKENS, ("completion",), completion_tokens)
            if cached_tokens:
                self._add(TOKENS, ("cached_prompt",), cached_tokens)

    def reasoning_tokens(self, tokens: int) -> None:
        with self._lock:
            self._add(TOKENS, ("reasoning",), tokens)

    def client_abort(self, model: str) -> None:
        with self._lock:
            self._add(CLIENT_ABORTS, (model,))

    def error(self, reason: str) -> None:
        with self._lock:
            self._add(ERRORS, (reason,))

    def record_error(self, stage: str) -> None:
        with self._lock:
            self._add(RECORD_ERRORS, (stage,))

    def output_captured(self) -> None:
        with self._lock:
            self._add(CAPTURED, ())

    def value(self, name: str, *values: str) -> float:
        """A counter's current value (label values in the family's declared order); 0 if never counted."""
        with self._lock:
            cell = self._counters.get((name, tuple(values)))
            return cell[0] if cell else 0.0

    def _labels_of(self, name: str, values: tuple[str, ...]) -> Labels:
        key = (name, values)
        cached = self._label_cache.get(key)
        if cached is None:
            cached = self._label_cache[key] = _labels(self._label_names[name], values)
        return cached

    def points(self) -> list[Point]:
        with self._lock:
            out = [Point(IN_FLIGHT, float(self.in_flight))]
            for (name, values), cell in self._counters.items():
                out.append(Point(name, cell[0], self._labels_of(name, values)))
            for (name, values), hist in self._histograms.items():
                snap = hist.snapshot()
                out.append(Point(name, snap.count, self._labels_of(name, values), snap))
            return out
