"""The agent's own health metrics."""

from __future__ import annotations

from agent.exporters.spec import MetricSpec

AGENT_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("campwatch_collector_up", "gauge",
               "1 if the collector's last run succeeded, 0 if it failed.", ("host", "collector")),
    MetricSpec("campwatch_collector_errors_total", "counter",
               "Failed collector runs since the agent started.", ("host", "collector")),
    MetricSpec("campwatch_collector_duration_seconds", "gauge",
               "Wall time of the collector's last run.", ("host", "collector")),
    MetricSpec("campwatch_samples_written_total", "counter",
               "Rows committed to the store.", ("host", "table")),
    MetricSpec("campwatch_dropped_total", "counter",
               "Rows or records dropped, by reason (queue_full, store_error, ...).", ("host", "reason")),
    MetricSpec("campwatch_store_queue_rows", "gauge", "Rows waiting for the next store flush.", ("host",)),
    MetricSpec("campwatch_agent_info", "gauge", "The running campwatch agent (always 1).", ("version", "host")),
)
