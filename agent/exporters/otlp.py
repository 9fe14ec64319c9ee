"""OTLP/HTTP export: an adapter over the same snapshot Prometheus reads, not a second pipeline.

Every `interval_s` a thread reads the snapshot (live sources such as the proxy's counters included),
turns each catalog family into OTLP data under its OpenTelemetry name (agent.exporters.otel_names):
gauges, cumulative sums, and histograms with explicit bounds. A failed export is logged (once per
run of failures) and retried on the next interval; shutdown makes a last export. The families to
export (`specs`) are handed in by the caller (agent.wiring passes agent.catalog.ALL_METRICS)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from agent import __version__
from agent.exporters.otel_names import OtelName, otel_name
from agent.exporters.snapshot import Snapshot
from agent.metric_spec import MetricSpec
from agent.samples import Point

log = logging.getLogger(__name__)

POD_ENV: tuple[tuple[str, str], ...] = (("POD_NAME", "k8s.pod.name"), ("POD_NAMESPACE", "k8s.namespace.name"),
                                        ("NODE_NAME", "k8s.node.name"))
"""Environment variables (set through the Kubernetes downward API) -> resource attributes."""


def resource_attributes(host: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    attrs = {"service.name": "campwatch", "service.version": __version__, "host.name": host}
    attrs.update({key: env[var] for var, key in POD_ENV if env.get(var)})
    return attrs


def _attributes(point: Point, target: OtelName) -> dict[str, str]:
    attrs = dict(point.labels)
    for label, key in target.renames:
        if label in attrs:
            attrs[key] = attrs.pop(label)
    attrs.update(target.attributes)
    return attrs


class OtlpExport:
    """Exports the snapshot's families over OTLP/HTTP (protobuf) on a background thread."""

    def __init__(self, snapshot: Snapshot, host: str, *, endpoint: str = "", interval_s: float = 60.0,
                 headers: Mapping[str, str] | None = None, exporter: MetricExporter | None = None,
                 environ: Mapping[str, str] | None = None, specs: Sequence[MetricSpec],
                 clock: Callable[[], int] = time.time_ns) -> None:
        self._snapshot = snapshot
        self._exporter = exporter or OTLPMetricExporter(endpoint=endpoint, headers=dict(headers or {}),
                                                        timeout=10)
        self._interval_s = interval_s
        self._clock = clock
        self._start_ns = clock()
        self._resource = Resource.create(resource_attributes(host, environ))
        self._scope = InstrumentationScope("campwatch", __version__)
        self._specs = {spec.name: spec for spec in specs}
        self._targets = {spec.name: otel_name(spec) for spec in specs}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one export at a time (the loop, flush and shutdown may meet)
        self._failing = False
        self._closed = False

    # ---- the data ----

    def collect(self) -> MetricsData:
        """The snapshot as OTLP data, one Metric per OpenTelemetry name."""
        now = self._clock()
        start = self._start_ns
        grouped: dict[str, list[tuple[MetricSpec, Point]]] = defaultdict(list)
        for point in self._snapshot.points():
            spec = self._specs.get(point.name)
            if spec is not None:  # the Prometheus adapter logs families missing from the catalog
                grouped[self._targets[point.name].name].append((spec, point))
        metrics: list[Metric] = []
        for name in sorted(grouped):
            members = grouped[name]
            first_spec = members[0][0]
            target = self._targets[first_spec.name]
            metrics.append(Metric(name=name, description=first_spec.help, unit=target.unit,
                                  data=self._data(first_spec, target, members, start, now)))
        scope = ScopeMetrics(scope=self._scope, metrics=metrics, schema_url="")
        return MetricsData(resource_metrics=[ResourceMetrics(resource=self._resource, scope_metrics=[scope],
                                                             schema_url="")])

    def _data(self, spec: MetricSpec, target: OtelName, members: Iterable[tuple[MetricSpec, Point]],
              start: int, now: int) -> Gauge | Sum | Histogram:
        instrument = target.instrument or spec.kind
        cumulative = AggregationTemporality.CUMULATIVE
        if instrument == "histogram":
            return Histogram(data_points=[self._histogram_point(point, self._targets[s.name], start, now)
                                          for s, point in members if point.histogram is not None],
                             aggregation_temporality=cumulative)
        points = [NumberDataPoint(attributes=_attributes(point, self._targets[s.name]), start_time_unix_nano=start,
                                  time_unix_nano=now, value=point.value) for s, point in members]
        if instrument == "counter":
            return Sum(data_points=points, aggregation_temporality=cumulative, is_monotonic=True)
        if instrument == "updowncounter":
            return Sum(data_points=points, aggregation_temporality=cumulative, is_monotonic=False)
        return Gauge(data_points=points)

    @staticmethod
    def _histogram_point(point: Point, target: OtelName, start: int, now: int) -> HistogramDataPoint:
        assert point.histogram is not None
        bounds: list[float] = []
        counts: list[int] = []
        previous = 0.0
        for bound, cumulative in point.histogram.buckets:
            if bound != float("inf"):
                bounds.append(bound)
            counts.append(int(cumulative - previous))
            previous = cumulative
        if len(counts) == len(bounds):  # no +Inf bucket given: the overflow is what the count says beyond
            counts.append(int(point.histogram.count - previous))
        return HistogramDataPoint(attributes=_attributes(point, target), start_time_unix_nano=start,
                                  time_unix_nano=now, count=int(point.histogram.count), sum=point.histogram.sum,
                                  bucket_counts=counts, explicit_bounds=bounds,
                                  min=None, max=None)  # type: ignore[arg-type]  # unknown: left unset

    # ---- the schedule ----

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="otlp-export", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.flush()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Export the snapshot now; False (logged) when the receiver did not take it."""
        with self._lock:
            if self._closed:
                return False
            try:
                result = self._exporter.export(self.collect(), timeout_millis=max(timeout_s, 0.1) * 1000)
            except Exception as exc:  # never fatal: the next interval tries again
                result = MetricExportResult.FAILURE
                reason = str(exc)
            else:
                reason = "the receiver did not accept the batch"
            ok = result is MetricExportResult.SUCCESS
            if not ok and not self._failing:
                log.warning("OTLP export failed: %s; retrying every %.0f s", reason, self._interval_s)
            elif ok and self._failing:
                log.info("OTLP export recovered")
            self._failing = not ok
            return ok

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop the loop and make a last export, all within `timeout_s` (the shutdown grace's share)."""
        deadline = time.monotonic() + max(timeout_s, 0.1)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(deadline - time.monotonic(), 0.0))
        if self._closed:
            return
        left = deadline - time.monotonic()
        if left > 0.05:
            self.flush(timeout_s=left)
        if not self._lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            log.warning("OTLP shutdown: an export was still running at the end of the grace")
            return
        try:
            self._closed = True
            try:
                self._exporter.shutdown()
            except Exception as exc:  # never fatal
                log.warning("OTLP shutdown: %s", exc)
        finally:
            self._lock.release()
