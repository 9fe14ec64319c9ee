"""Exported request-capture (proxy) metric families."""

from __future__ import annotations

from agent.exporters.spec import MetricSpec

PROXY_METRICS: tuple[MetricSpec, ...] = ()
