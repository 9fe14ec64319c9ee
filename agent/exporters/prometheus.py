"""Prometheus exposition: an adapter that renders the snapshot on each scrape.

The catalog (every family's kind and help) is handed in by the caller (agent.wiring passes
agent.catalog.CATALOG), so this layer never imports the areas that declare the families."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping

from prometheus_client import disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from agent.exporters.snapshot import Snapshot
from agent.metric_spec import MetricSpec
from agent.samples import Point

log = logging.getLogger(__name__)


class SnapshotCollector(Collector):
    """Turns snapshot points into metric families with the catalog's type and help."""

    def __init__(self, snapshot: Snapshot, catalog: Mapping[str, MetricSpec]) -> None:
        self._snapshot = snapshot
        self._catalog = catalog
        self._warned: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        grouped: dict[str, list[Point]] = defaultdict(list)
        for point in self._snapshot.points():
            grouped[point.name].append(point)
        for name in sorted(grouped):
            spec = self._catalog.get(name)
            if spec is None:
                if name not in self._warned:
                    self._warned.add(name)
                    log.error("metric %s is not in the catalog; not exported", name)
                continue
            family: Metric
            if spec.kind == "counter":
                family = CounterMetricFamily(name.removesuffix("_total"), spec.help)
            elif spec.kind == "histogram":
                family = HistogramMetricFamily(name, spec.help)
            else:
                family = GaugeMetricFamily(name, spec.help)
            sample_name = name if spec.kind != "counter" else name.removesuffix("_total") + "_total"
            seen: set[tuple[tuple[str, str], ...]] = set()
            for point in grouped[name]:
                if point.labels in seen:  # two sources claiming one series: keep the first
                    continue
                seen.add(point.labels)
                if point.histogram is not None:
                    _add_histogram(family, name, point)
                elif spec.kind != "histogram":
                    family.add_sample(sample_name, dict(point.labels), point.value)
            yield family


def _add_histogram(family: Metric, name: str, point: Point) -> None:
    """The samples prometheus_client's own Histogram writes: _bucket per bound (+Inf last), _count, _sum."""
    assert point.histogram is not None
    base = dict(point.labels)
    for bound, cumulative in point.histogram.buckets:
        le = floatToGoString(bound)  # type: ignore[no-untyped-call]
        family.add_sample(name + "_bucket", {**base, "le": le}, cumulative)
    family.add_sample(name + "_count", base, point.histogram.count)
    family.add_sample(name + "_sum", base, point.histogram.sum)


def build_registry(snapshot: Snapshot, catalog: Mapping[str, MetricSpec]) -> CollectorRegistry:
    """A registry rendering `snapshot` with the families of `catalog` (name -> spec)."""
    # Every family is rendered from the snapshot (no prometheus_client instruments of our own), so
    # no *_created series appear; the process-wide switch keeps it so for anything else registered.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot, catalog))
    return registry
