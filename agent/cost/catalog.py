"""Exported cost metric families."""

from __future__ import annotations

from agent.exporters.spec import MetricSpec

COST_METRICS: tuple[MetricSpec, ...] = ()
