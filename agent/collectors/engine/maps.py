"""Which upstream metric means what: every known vLLM (V0 and V1), SGLang and TGI family name,
mapped to one campwatch concept each. This module is data; `parse.py` reads it.

A concept is a version-independent quantity (`kv_cache_usage_ratio`, `ttft_seconds`, ...). When a
server shows two names for one concept (vLLM 0.9 and 0.10 served both the old and the new name
during a deprecation), the lower `rank` wins. Sources of one concept with the same rank are merged
(TGI's success and failure counters are both finish reasons).

Only the concepts in EXTRACTED are read into samples and SLIs; the rest are mapped so that they are
known (and documented here) rather than reported as unmapped. Names are written as served, counters
with their `_total` suffix when the server adds one (TGI's Rust exporter does not).

Sources: vLLM 0.33 vllm/v1/metrics/loggers.py and the 0.4-0.10 vllm/engine/metrics.py (V0);
SGLang python/sglang/srt/metrics/collector.py and docs/references/production_metrics.md;
TGI docs/source/reference/metrics.md and router/src/server.rs, router/src/infer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

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


FINISH_REASONS = "requests_finished_by_reason"
LORA_ADAPTERS = "lora_adapters"

COUNTERS: tuple[str, ...] = (
    "prompt_tokens_total",
    "generation_tokens_total",
    "cached_prompt_tokens_total",
    "preemptions_total",
    "prefix_cache_queries_total",
    "prefix_cache_hits_total",
    "requests_finished_total",
    "requests_errored_total",
    "requests_aborted_total",
)
GAUGES: tuple[str, ...] = (
    "requests_running",
    "requests_waiting",
    "kv_cache_usage_ratio",
    "prefix_cache_hit_ratio_reported",
)
HISTOGRAMS: tuple[str, ...] = (
    "ttft_seconds",
    "inter_token_latency_seconds",
    "e2e_latency_seconds",
    "queue_time_seconds",
    "request_prompt_tokens",
    "request_generation_tokens",
)
EXTRACTED: frozenset[str] = frozenset((*COUNTERS, *GAUGES, *HISTOGRAMS, FINISH_REASONS, LORA_ADAPTERS))

IGNORED_PREFIXES: tuple[str, ...] = ("process_", "python_")
"""Standard client-library families: neither mapped nor reported as unmapped."""


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
    "vllm:prompt_tokens_by_source_total": _s("prompt_tokens_by_source_total", "counter",
                                             "V1, recent: label source"),
    "vllm:prompt_tokens_recomputed_total": _s("recomputed_prompt_tokens_total", "counter", "V1, recent"),
    "vllm:avg_prompt_throughput_toks_per_s": _s("prompt_throughput_reported", "gauge", _V0),
    "vllm:avg_generation_throughput_toks_per_s": _s("generation_throughput_reported", "gauge", _V0),
    "vllm:iteration_tokens_total": _s("iteration_tokens", "histogram",
                                      "all versions: a histogram despite the _total name"),
    # Preemption and caches
    "vllm:num_preemptions_total": _s("preemptions_total", "counter", "all versions"),
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
                                             "V0 and V1 <= 0.10; deprecated 0.11 (per token)", rank=1),
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
                                                     "V0 and V1"),
    "vllm:spec_decode_num_draft_tokens_total": _s("spec_decode_draft_tokens_total", "counter", "V0 and V1"),
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
    "sglang:cached_tokens_total": _s("cached_prompt_tokens_total", "counter", _SG),
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
    "sglang:token_usage": _s("kv_cache_usage_ratio", "gauge", _SG + ": share of the KV token pool in use"),
    "sglang:num_used_tokens": _s("kv_cache_used_tokens", "gauge", _SG),
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
    "sglang:gpu_execution_seconds_total": _s("gpu_busy_seconds_total", "counter", _SG + ": label category"),
    "sglang:dp_cooperation_realtime_tokens_total": _s("dp_cooperation_tokens_total", "counter", _SG),
    "sglang:dp_cooperation_gpu_execution_seconds_total": _s("dp_cooperation_gpu_busy_seconds_total", "counter",
                                                           _SG),
    "sglang:prefill_delayer_wait_forward_passes": _s("prefill_delayer_wait_passes", "histogram", _SG),
    "sglang:prefill_delayer_wait_seconds": _s("prefill_delayer_wait_seconds", "histogram", _SG),
    "sglang:prefill_delayer_outcomes_total": _s("prefill_delayer_outcomes_total", "counter", _SG),
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

SERVER_MAPS: tuple[ServerMap, ...] = (
    ServerMap("vllm", "vllm:", "model_name", "engine", VLLM_SOURCES),
    # SGLang has no engine-core label; data-parallel ranks are its closest equivalent.
    ServerMap("sglang", "sglang:", "model_name", "dp_rank", SGLANG_SOURCES),
    # TGI serves one model and labels nothing with it; its token totals live only in histogram sums.
    ServerMap("tgi", "tgi_", "", "", TGI_SOURCES,
              counters_from_histogram_sum=MappingProxyType({
                  "prompt_tokens_total": "request_prompt_tokens",
                  "generation_tokens_total": "request_generation_tokens",
              })),
)
KINDS: tuple[str, ...] = tuple(m.kind for m in SERVER_MAPS)
DEFAULT_ENGINE = "0"
"""Engine label value when the server has one engine core and says nothing."""
