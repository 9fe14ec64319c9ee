"""The proxy's prometheus_client instruments, made from the PROXY_METRICS declarations on the
registry the agent exposes. Labelled children are cached: `labels()` costs more than `inc()`."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agent.capture.catalog import LATENCY_BUCKETS, PROXY_METRICS, TTFT_BUCKETS
from agent.exporters.spec import MetricSpec

_SPECS: dict[str, MetricSpec] = {spec.name: spec for spec in PROXY_METRICS}
_BUCKETS: dict[str, tuple[float, ...]] = {
    "campwatch_proxy_ttft_seconds": TTFT_BUCKETS,
    "campwatch_proxy_latency_seconds": LATENCY_BUCKETS,
}


def _make(name: str, registry: CollectorRegistry) -> Any:
    spec = _SPECS[name]  # a KeyError here means the family was not declared in the catalog
    if spec.kind == "counter":
        return Counter(name.removesuffix("_total"), spec.help, spec.labels, registry=registry)
    if spec.kind == "gauge":
        return Gauge(name, spec.help, spec.labels, registry=registry)
    if spec.kind == "histogram":
        return Histogram(name, spec.help, spec.labels, buckets=_BUCKETS[name], registry=registry)
    raise ValueError(f"{name}: the proxy has no instrument for kind {spec.kind!r}")


class ProxyInstruments:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = _make("campwatch_proxy_requests_total", registry)
        self._ttft = _make("campwatch_proxy_ttft_seconds", registry)
        self._latency = _make("campwatch_proxy_latency_seconds", registry)
        self._tokens = _make("campwatch_proxy_tokens_total", registry)
        self.in_flight = 0
        # read at scrape time: no lock and no call per request
        _make("campwatch_proxy_requests_in_flight", registry).set_function(lambda: self.in_flight)
        self._errors = _make("campwatch_proxy_errors_total", registry)
        self._record_errors = _make("campwatch_proxy_record_errors_total", registry)
        self._client_aborts = _make("campwatch_proxy_client_aborts_total", registry)
        self.captured = _make("campwatch_proxy_outputs_captured_total", registry)
        self._children: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._prompt = self._tokens.labels(direction="prompt")
        self._completion = self._tokens.labels(direction="completion")
        self._cached = self._tokens.labels(direction="cached_prompt")
        self._reasoning = self._tokens.labels(direction="reasoning")

    def _child(self, family: Any, key: str, values: tuple[str, ...]) -> Any:
        child = self._children.get((key, values))
        if child is None:
            child = self._children[(key, values)] = family.labels(*values)
        return child

    def observe(self, *, route: str, model: str, status: int, ttft: float | None, latency: float,
                prompt_tokens: int | None, completion_tokens: int | None, cached_tokens: int | None) -> None:
        self._child(self._requests, "requests", (route, model, str(status))).inc()
        self._child(self._latency, "latency", (route, model)).observe(latency)
        if ttft is not None:
            self._child(self._ttft, "ttft", (model,)).observe(ttft)
        if prompt_tokens:
            self._prompt.inc(prompt_tokens)
        if completion_tokens:
            self._completion.inc(completion_tokens)
        if cached_tokens:
            self._cached.inc(cached_tokens)

    def reasoning_tokens(self, tokens: int) -> None:
        self._reasoning.inc(tokens)

    def client_abort(self, model: str) -> None:
        self._child(self._client_aborts, "client_aborts", (model,)).inc()

    def error(self, reason: str) -> None:
        self._child(self._errors, "errors", (reason,)).inc()

    def record_error(self, stage: str) -> None:
        self._child(self._record_errors, "record_errors", (stage,)).inc()
