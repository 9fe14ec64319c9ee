"""Benchmark: the proxy's per-request accounting (agent.capture.instruments) against what it replaced,
prometheus_client Counter/Histogram children on a registry, measured in the same run.

    .venv/bin/python -m benchmarks.bench_proxy_instruments          # about 10 s

Per request the proxy counts one request, observes latency (and TTFT for streams) and adds tokens.
Printed: microseconds per request for each, their ratio, and the cost of publishing the figures for
one export (snapshot points vs a prometheus_client scrape of the same registry)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from agent.capture.catalog import LATENCY_BUCKETS, TTFT_BUCKETS
from agent.capture.instruments import ProxyInstruments
from agent.catalog import CATALOG
from agent.exporters.prometheus import build_registry
from agent.exporters.snapshot import Snapshot

N = 50_000
ROUNDS = 5
MODELS = [f"model-{i}" for i in range(4)]


class Old:
    """The former instruments: cached labelled children, as agent/capture/instruments.py had them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("campwatch_proxy_requests", "h", ("route", "model", "status"), registry=self.registry)
        self.latency = Histogram("campwatch_proxy_latency_seconds", "h", ("route", "model"),
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.ttft = Histogram("campwatch_proxy_ttft_seconds", "h", ("model",), buckets=TTFT_BUCKETS,
                              registry=self.registry)
        tokens = Counter("campwatch_proxy_tokens", "h", ("direction",), registry=self.registry)
        self.prompt, self.completion = tokens.labels("prompt"), tokens.labels("completion")
        self.children: dict[tuple[str, tuple[str, ...]], object] = {}

    def _child(self, family: object, key: str, values: tuple[str, ...]) -> object:
        child = self.children.get((key, values))
        if child is None:
            child = self.children[(key, values)] = family.labels(*values)  # type: ignore[attr-defined]
        return child

    def observe(self, route: str, model: str, status: int, ttft: float, latency: float) -> None:
        self._child(self.requests, "r", (route, model, str(status))).inc()  # type: ignore[attr-defined]
        self._child(self.latency, "l", (route, model)).observe(latency)  # type: ignore[attr-defined]
        self._child(self.ttft, "t", (model,)).observe(ttft)  # type: ignore[attr-defined]
        self.prompt.inc(120)
        self.completion.inc(40)


def per_request_us(observe: Callable[[int], None]) -> float:
    best = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for i in range(N):
            observe(i)
        best.append((time.perf_counter() - start) / N * 1e6)
    return statistics.median(best)


def main() -> None:
    old, new = Old(), ProxyInstruments()

    def old_observe(i: int) -> None:
        old.observe("/v1/chat/completions", MODELS[i & 3], 200, 0.05 + (i % 7) * 0.01, 0.4 + (i % 11) * 0.1)

    def new_observe(i: int) -> None:
        new.observe(route="/v1/chat/completions", model=MODELS[i & 3], status=200, ttft=0.05 + (i % 7) * 0.01,
                    latency=0.4 + (i % 11) * 0.1, prompt_tokens=120, completion_tokens=40, cached_tokens=None)

    old_us, new_us = per_request_us(old_observe), per_request_us(new_observe)
    snapshot = Snapshot("bench")
    snapshot.attach("proxy", new.points)
    registry = build_registry(snapshot, CATALOG)

    def timed(fn: Callable[[], object], n: int = 200) -> float:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n * 1e6

    old_scrape = timed(lambda: generate_latest(old.registry))
    new_scrape = timed(lambda: generate_latest(registry))
    new_points = timed(lambda: list(snapshot.points()))
    print(f"per request: prometheus_client children {old_us:.2f} us, snapshot accumulator {new_us:.2f} us, "
          f"ratio new/old {new_us / old_us:.2f}")
    print(f"one /metrics render of the proxy families: prometheus_client {old_scrape:.0f} us, "
          f"snapshot {new_scrape:.0f} us (ratio {new_scrape / old_scrape:.2f}); snapshot points alone "
          f"(what OTLP reads) {new_points:.0f} us")


if __name__ == "__main__":
    main()
