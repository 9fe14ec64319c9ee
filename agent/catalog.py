"""Every metric family campwatch exports, gathered from the areas that own them.

It sits above the areas (with agent.wiring), which declare their own families: agent.wiring hands it
to the Prometheus and OTLP exporters, which never import an area. Alert rules and dashboards are
checked against this catalog, so a rename here breaks a test instead of a dashboard."""

from __future__ import annotations

from dataclasses import replace

from agent.capture.catalog import PROXY_METRICS
from agent.collectors.engine.catalog import ENGINE_METRICS
from agent.collectors.gpu.catalog import GPU_METRICS
from agent.cost.catalog import COST_METRICS
from agent.drift.catalog import DRIFT_METRICS
from agent.exporters.agent_catalog import AGENT_METRICS
from agent.exporters.snapshot import HOST_LABEL
from agent.metric_spec import MetricSpec


def _with_host(spec: MetricSpec) -> MetricSpec:
    """Every series carries `host` (the snapshot adds it to points without one), so every family
    declares it, whether or not its area's catalog lists it."""
    if HOST_LABEL in spec.labels:
        return spec
    return replace(spec, labels=(HOST_LABEL, *spec.labels))


ALL_METRICS: tuple[MetricSpec, ...] = tuple(_with_host(spec) for spec in (
    AGENT_METRICS + GPU_METRICS + ENGINE_METRICS + PROXY_METRICS + COST_METRICS + DRIFT_METRICS
))

CATALOG: dict[str, MetricSpec] = {spec.name: spec for spec in ALL_METRICS}


def exported_series_names() -> set[str]:
    """Every series name a scrape can show (histograms add _bucket, _sum, _count; info adds _info)."""
    names: set[str] = set()
    for spec in ALL_METRICS:
        if spec.kind == "histogram":
            names.update({spec.name + "_bucket", spec.name + "_sum", spec.name + "_count"})
        elif spec.kind == "info":
            names.add(spec.name if spec.name.endswith("_info") else spec.name + "_info")
        else:
            names.add(spec.name)
    return names
