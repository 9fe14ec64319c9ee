"""Exported drift metric families."""

from __future__ import annotations

from agent.exporters.spec import MetricSpec

DRIFT_METRICS: tuple[MetricSpec, ...] = ()
