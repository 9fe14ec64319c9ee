"""Exported serving-engine metric families."""

from __future__ import annotations

from agent.exporters.spec import MetricSpec

_ENGINE = ("host", "server", "model", "engine")

ENGINE_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("campwatch_engine_up", "gauge", "1 if the last scrape of the server succeeded.",
               ("host", "server", "kind")),
    MetricSpec("campwatch_engine_prompt_tokens_total", "counter", "Prompt tokens processed.", _ENGINE),
    MetricSpec("campwatch_engine_generation_tokens_total", "counter", "Tokens generated.", _ENGINE),
    MetricSpec("campwatch_engine_requests_running", "gauge", "Requests in the running batch.", _ENGINE),
    MetricSpec("campwatch_engine_requests_waiting", "gauge", "Requests queued.", _ENGINE),
    MetricSpec("campwatch_engine_kv_cache_usage_ratio", "gauge",
               "Share of KV-cache blocks in use (0..1).", _ENGINE),
)
