from __future__ import annotations

import re

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.catalog import ALL_METRICS, CATALOG
from agent.exporters.dashboards import DASHBOARDS
from agent.exporters.prometheus import build_registry
from agent.exporters.snapshot import Snapshot
from agent.samples import Point, labels
from agent.telemetry import Telemetry


def test_every_series_of_every_part_carries_the_host_label_added_once_by_the_snapshot() -> None:
    telemetry = Telemetry("node-7")
    telemetry.collector_ok("gpu", 0.1)
    telemetry.dropped("queue_full", 2)
    snapshot = Snapshot("node-7")
    snapshot.attach("agent", telemetry.points)
    snapshot.replace("cost", [Point("campwatch_camp_holds", 1.0, labels(baseline="openai/gpt-4o"))])
    snapshot.replace("gpu", [Point("campwatch_gpu_up", 1.0, labels(host="node-7", gpu=0, uuid="GPU-a", model="H100",
                                                                    pci_bus_id="0"))])
    page = generate_latest(build_registry(snapshot, CATALOG)).decode()
    samples = [s for f in text_string_to_metric_families(page) for s in f.samples]
    assert {s.name for s in samples} >= {"campwatch_collector_up", "campwatch_dropped_total", "campwatch_camp_holds",
                                         "campwatch_gpu_up", "campwatch_store_queue_rows"}
    assert {s.labels.get("host") for s in samples} == {"node-7"}
    up = next(s for s in samples if s.name == "campwatch_collector_up")
    assert up.labels == {"host": "node-7", "collector": "gpu"}


def test_a_point_that_names_its_own_host_keeps_it() -> None:
    snapshot = Snapshot("node-7")
    snapshot.replace("drift", [Point("campwatch_drift_last_run_timestamp_seconds", 1.0, labels(host="other"))])
    assert [dict(p.labels) for p in snapshot.points()] == [{"host": "other"}]


def test_every_catalog_family_declares_host() -> None:
    assert [spec.name for spec in ALL_METRICS if "host" not in spec.labels] == []


_SELECTOR = re.compile(r"\b(campwatch_[a-z0-9_]+)(\{[^}]*\})?")


def test_every_dashboard_query_filters_every_series_by_the_host_variable() -> None:
    unfiltered = []
    for dashboard in DASHBOARDS:
        for panel in dashboard.panels:
            for query in panel.queries:
                for name, matcher in _SELECTOR.findall(query.expr):
                    if 'host=~"$host"' not in matcher:
                        unfiltered.append(f"{dashboard.uid} / {panel.title}: {name}")
    assert unfiltered == []
