"""Exported serving-engine metric families.

Raw values keep the server's engine cores apart (labels host, server, model, engine); SLIs are per
(server, model) over a trailing window (labels host, server, model, window), summed across cores."""

from __future__ import annotations

from agent.exporters.spec import MetricSpec

_SERVER = ("host", "server")
_ENGINE = ("host", "server", "model", "engine")
_SLI = ("host", "server", "model", "window")
_SLI_Q = (*_SLI, "quantile")

ENGINE_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("campwatch_engine_up", "gauge", "1 if the last scrape of the server succeeded.",
               ("host", "server", "kind")),
    MetricSpec("campwatch_engine_unmapped_metrics", "gauge",
               "Metric families on the server's last page that campwatch's metric map does not know.",
               _SERVER),
    MetricSpec("campwatch_engine_rejected_samples_total", "counter",
               "Samples on the server's pages rejected (not stored, not used in rates), by reason: nan, inf, "
               "negative_counter.", ("host", "server", "reason")),
    MetricSpec("campwatch_engine_scrape_duration_seconds", "gauge",
               "Time to fetch, parse and derive the server's last page.", _SERVER),
    # Raw values, as the server reports them (counters reset when the server restarts).
    MetricSpec("campwatch_engine_prompt_tokens_total", "counter", "Prompt tokens processed.", _ENGINE),
    MetricSpec("campwatch_engine_generation_tokens_total", "counter", "Tokens generated.", _ENGINE),
    MetricSpec("campwatch_engine_cached_prompt_tokens_total", "counter",
               "Prompt tokens served from the prefix cache.", _ENGINE),
    MetricSpec("campwatch_engine_preemptions_total", "counter",
               "Requests preempted (SGLang: retracted) to free KV cache.", _ENGINE),
    MetricSpec("campwatch_engine_prefix_cache_queries_total", "counter",
               "Prompt tokens looked up in the prefix cache.", _ENGINE),
    MetricSpec("campwatch_engine_prefix_cache_hits_total", "counter",
               "Prompt tokens found in the prefix cache.", _ENGINE),
    MetricSpec("campwatch_engine_requests_finished_total", "counter",
               "Requests finished, for any reason (including errors and aborts).", _ENGINE),
    MetricSpec("campwatch_engine_requests_errored_total", "counter", "Requests that ended in an error.",
               _ENGINE),
    MetricSpec("campwatch_engine_requests_aborted_total", "counter",
               "Requests aborted, as the engine counts them (cancelled, dropped). vLLM does not count a "
               "client that disconnects here: see campwatch_proxy_client_aborts_total.", _ENGINE),
    MetricSpec("campwatch_engine_requests_running", "gauge", "Requests in the running batch.", _ENGINE),
    MetricSpec("campwatch_engine_requests_waiting", "gauge", "Requests queued.", _ENGINE),
    MetricSpec("campwatch_engine_kv_cache_usage_ratio", "gauge",
               "Share of KV-cache blocks in use (0..1).", _ENGINE),
    MetricSpec("campwatch_engine_lora_adapter_active", "gauge",
               "1 for each LoRA adapter with running or waiting requests (vLLM lora_requests_info).",
               ("host", "server", "engine", "adapter", "state")),
    # SLIs over trailing windows.
    MetricSpec("campwatch_engine_requests_per_second", "gauge", "Requests finished per second.", _SLI),
    MetricSpec("campwatch_engine_prompt_tokens_per_second", "gauge", "Prompt tokens processed per second.",
               _SLI),
    MetricSpec("campwatch_engine_generation_tokens_per_second", "gauge", "Tokens generated per second.", _SLI),
    MetricSpec("campwatch_engine_preemptions_per_second", "gauge", "Preemptions per second.", _SLI),
    MetricSpec("campwatch_engine_request_errors_per_second", "gauge", "Requests ending in an error per second.",
               _SLI),
    MetricSpec("campwatch_engine_request_aborts_per_second", "gauge",
               "Requests aborted per second, as the engine counts them (vLLM leaves client disconnects out: "
               "campwatch_proxy_client_aborts_total counts those).", _SLI),
    MetricSpec("campwatch_engine_finish_reason_ratio", "gauge",
               "Share of finished requests by finish reason (stop, length, abort, error, ...).",
               (*_SLI, "reason")),
    MetricSpec("campwatch_engine_prefix_cache_hit_ratio", "gauge",
               "Prompt tokens found in the prefix cache over tokens looked up (0..1).", _SLI),
    MetricSpec("campwatch_engine_ttft_seconds", "gauge",
               "Time to first token quantile, from histogram bucket increases (as histogram_quantile).",
               _SLI_Q),
    MetricSpec("campwatch_engine_inter_token_latency_seconds", "gauge",
               "Inter-token latency quantile (TGI: per-request mean time per token).", _SLI_Q),
    MetricSpec("campwatch_engine_e2e_latency_seconds", "gauge", "End-to-end request latency quantile.", _SLI_Q),
    MetricSpec("campwatch_engine_queue_time_seconds", "gauge", "Time waiting in the queue, quantile.", _SLI_Q),
    MetricSpec("campwatch_engine_requests_running_avg", "gauge",
               "Mean requests in the running batch (summed over engine cores).", _SLI),
    MetricSpec("campwatch_engine_requests_waiting_avg", "gauge",
               "Mean requests queued (summed over engine cores).", _SLI),
    MetricSpec("campwatch_engine_kv_cache_usage_avg_ratio", "gauge",
               "Mean KV-cache usage (averaged over engine cores).", _SLI),
    MetricSpec("campwatch_engine_kv_cache_usage_max_ratio", "gauge",
               "Highest KV-cache usage of any engine core.", _SLI),
)
