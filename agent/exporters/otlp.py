"""OTLP/HTTP export: an adapter over the same snapshot Prometheus reads, not a second pipeline.

The SDK's periodic reader calls one observable instrument per catalog family; each callback reads
the snapshot. A failed export is logged by the SDK and retried on the next interval; shutdown
makes a last export."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from agent import __version__
from agent.exporters.catalog import ALL_METRICS
from agent.exporters.snapshot import Snapshot

log = logging.getLogger(__name__)


def _unit(name: str) -> str:
    for suffix, unit in (("_seconds", "s"), ("_bytes", "By"), ("_watts", "W"), ("_joules", "J"),
                         ("_ratio", "1"), ("_celsius", "Cel"), ("_hz", "Hz"), ("_usd", "USD")):
        if name.removesuffix("_total").endswith(suffix):
            return unit
    return "1"


class OtlpExport:
    """Registers the snapshot's families as observable instruments on a MeterProvider."""

    def __init__(self, snapshot: Snapshot, host: str, *, endpoint: str = "", interval_s: float = 60.0,
                 headers: Mapping[str, str] | None = None, exporter: MetricExporter | None = None) -> None:
        self._snapshot = snapshot
        exporter = exporter or OTLPMetricExporter(endpoint=endpoint, headers=dict(headers or {}), timeout=10)
        self._reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval_s * 1000)
        resource = Resource.create({"service.name": "campwatch", "service.version": __version__,
                                    "host.name": host})
        self._provider = MeterProvider(resource=resource, metric_readers=[self._reader])
        meter = self._provider.get_meter("campwatch", __version__)
        for spec in ALL_METRICS:
            if spec.kind == "gauge":
                meter.create_observable_gauge(spec.name, [self._callback(spec.name)], _unit(spec.name), spec.help)
            elif spec.kind == "counter":
                meter.create_observable_counter(spec.name, [self._callback(spec.name)], _unit(spec.name),
                                                spec.help)
            # histograms and info families are Prometheus-side only

    def _callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(p.value, dict(p.labels)) for p in self._snapshot.points() if p.name == name]
        return observe

    def flush(self) -> bool:
        return bool(self._provider.force_flush(timeout_millis=10_000))

    def shutdown(self, timeout_s: float = 10.0) -> None:
        try:
            self._provider.shutdown(timeout_millis=max(timeout_s, 0.1) * 1000)
        except Exception as exc:  # the SDK raises if shut down twice; never fatal
            log.warning("OTLP shutdown: %s", exc)
