"""Every serving-engine concept (a version-independent quantity; collectors/engine/maps.py says which
upstream names measure it) with its kind and where it goes:

- `exported`: exported raw, as the server reports it, as `campwatch_engine_<concept>` per (model,
  engine core) (the catalog declares each family's help: collectors/engine/catalog.py). Concepts
  not exported raw still feed the SLIs derived over windows (rates, ratios, quantiles).
- `stored`: kept in the store: a column of engine_samples for counters and gauges, a key of its
  `histograms` JSON for histograms. A new stored value column needs an Alembic migration.

Store columns follow this table's order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ConceptKind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class EngineConcept:
    name: str
    kind: ConceptKind
    exported: bool = False
    stored: bool = False


ENGINE_CONCEPTS: tuple[EngineConcept, ...] = (
    EngineConcept("prompt_tokens_total", "counter", exported=True, stored=True),
    EngineConcept("generation_tokens_total", "counter", exported=True, stored=True),
    EngineConcept("cached_prompt_tokens_total", "counter", exported=True, stored=True),
    EngineConcept("requests_running", "gauge", exported=True, stored=True),
    EngineConcept("requests_waiting", "gauge", exported=True, stored=True),
    EngineConcept("kv_cache_usage_ratio", "gauge", exported=True, stored=True),
    EngineConcept("preemptions_total", "counter", exported=True, stored=True),
    EngineConcept("prefix_cache_queries_total", "counter", exported=True, stored=True),
    EngineConcept("prefix_cache_hits_total", "counter", exported=True, stored=True),
    EngineConcept("requests_finished_total", "counter", exported=True, stored=True),
    EngineConcept("requests_errored_total", "counter", exported=True, stored=True),
    EngineConcept("requests_aborted_total", "counter", exported=True, stored=True),
    # migration 0005: vLLM 0.32 / SGLang 0.5.2x (per GPU for the estimates)
    EngineConcept("admission_rejections_total", "counter", exported=True, stored=True),
    EngineConcept("spec_decode_accepted_tokens_total", "counter", exported=True, stored=True),
    EngineConcept("spec_decode_draft_tokens_total", "counter", exported=True, stored=True),
    EngineConcept("estimated_flops_total", "counter", exported=True, stored=True),
    EngineConcept("estimated_read_bytes_total", "counter", exported=True, stored=True),
    EngineConcept("estimated_write_bytes_total", "counter", exported=True, stored=True),
    # read for SLIs only. estimated_* above are per GPU (vLLM and SGLang with --enable-mfu-metrics);
    # http_requests_total is server-wide and split by status class; *_by_source_total are split by tier
    # (cached_prompt_tokens_by_source_total is exported by tier, with a `source` label, by the collector).
    EngineConcept("spec_decode_drafts_total", "counter"),
    EngineConcept("computed_prompt_tokens_total", "counter"),
    EngineConcept("prompt_seconds_total", "counter"),
    EngineConcept("generation_seconds_total", "counter"),
    EngineConcept("http_requests_total", "counter"),
    EngineConcept("prompt_tokens_by_source_total", "counter"),
    EngineConcept("cached_prompt_tokens_by_source_total", "counter"),
    EngineConcept("prefix_cache_hit_ratio_reported", "gauge"),
    EngineConcept("spec_decode_acceptance_ratio", "gauge"),
    # exported, not stored: KV-cache token counts (SGLang 0.5.2x, vLLM cache config)
    EngineConcept("kv_cache_used_tokens", "gauge", exported=True),
    EngineConcept("kv_cache_available_tokens", "gauge", exported=True),
    EngineConcept("kv_cache_evictable_tokens", "gauge", exported=True),
    EngineConcept("kv_cache_capacity_tokens", "gauge", exported=True),
    # histograms: exported as quantile SLIs; the stored ones keep their cumulative buckets for
    # per-window latency and token-size analysis (inter-token latency: measured capacity checks its
    # SLO, agent/cost/capacity.py)
    EngineConcept("ttft_seconds", "histogram", stored=True),
    EngineConcept("inter_token_latency_seconds", "histogram", stored=True),
    EngineConcept("e2e_latency_seconds", "histogram", stored=True),
    EngineConcept("queue_time_seconds", "histogram"),
    EngineConcept("request_prompt_tokens", "histogram", stored=True),
    EngineConcept("request_generation_tokens", "histogram", stored=True),
    EngineConcept("prefill_time_seconds", "histogram"),
    EngineConcept("decode_time_seconds", "histogram"),
    EngineConcept("inference_time_seconds", "histogram"),
    EngineConcept("preemptions_per_request", "histogram"),
)


def _names(kind: ConceptKind) -> tuple[str, ...]:
    return tuple(c.name for c in ENGINE_CONCEPTS if c.kind == kind)


ENGINE_COUNTERS: tuple[str, ...] = _names("counter")
ENGINE_GAUGES: tuple[str, ...] = _names("gauge")
ENGINE_HISTOGRAMS: tuple[str, ...] = _names("histogram")

ENGINE_STORED_VALUES: tuple[str, ...] = tuple(c.name for c in ENGINE_CONCEPTS if c.stored and c.kind != "histogram")
"""Counters and gauges kept in the store, one engine_samples column each."""
ENGINE_STORED_HISTOGRAMS: tuple[str, ...] = tuple(c.name for c in ENGINE_CONCEPTS
                                                  if c.stored and c.kind == "histogram")
"""Histograms kept (cumulative buckets as JSON) for per-window latency and token-size analysis."""
ENGINE_RAW_EXPORTED: tuple[str, ...] = tuple(c.name for c in ENGINE_CONCEPTS if c.exported)
"""Concepts exported raw as campwatch_engine_<concept> per (model, engine core)."""
