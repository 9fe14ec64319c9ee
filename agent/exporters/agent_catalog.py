"""The agent's own health metrics."""

from __future__ import annotations

from agent.metric_spec import MetricSpec

AGENT_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("campwatch_collector_up", "gauge",
               "1 if the part's last run succeeded, 0 if it failed: collectors (gpu, engine:URL), periodic "
               "jobs (maintenance, cost, drift) and service starts (proxy, otlp).", ("host", "collector")),
    MetricSpec("campwatch_collector_errors_total", "counter",
               "Failed runs of the part since the agent started.", ("host", "collector")),
    MetricSpec("campwatch_collector_duration_seconds", "gauge",
               "Wall time of the part's last run.", ("host", "collector")),
    MetricSpec("campwatch_samples_written_total", "counter",
               "Rows committed to the store.", ("host", "table")),
    MetricSpec("campwatch_dropped_total", "counter",
               "Rows or records dropped, by reason (queue_full, store_error, rejected, spool_full, ...).",
               ("host", "reason")),
    MetricSpec("campwatch_store_queue_rows", "gauge", "Rows waiting for the next store flush.", ("host",)),
    MetricSpec("campwatch_store_rows_accepted_total", "counter",
               "Rows the store writer took into its queue; each is later written, spooled, or dropped "
               "and counted in campwatch_dropped_total.", ("host",)),
    MetricSpec("campwatch_store_values_sanitized_total", "counter",
               "Values changed to be storable: reason nul (NUL characters removed) or truncated "
               "(cut to the column's length, ending in …).", ("host", "reason")),
    MetricSpec("campwatch_store_up", "gauge",
               "1 if the store took the last flush (or had nothing to take), 0 while writes fail.", ("host",)),
    MetricSpec("campwatch_spool_bytes", "gauge",
               "Bytes of rows held in the local spool, waiting for the store to come back.", ("host",)),
    MetricSpec("campwatch_store_oldest_unwritten_seconds", "gauge",
               "Age of the oldest row queued or spooled but not yet in the store (0 when none).", ("host",)),
    MetricSpec("campwatch_agent_info", "gauge", "The running campwatch agent (always 1).", ("version", "host")),
)
