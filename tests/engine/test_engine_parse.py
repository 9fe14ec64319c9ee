"""Pages -> concept values per (model, engine), for every server kind and vLLM generation."""

from __future__ import annotations

import math

import pytest

from agent.collectors.engine.parse import parse_page
from agent.errors import PageError
from agent.sim.vllm_metrics import FinishedRequest, VllmMetrics
from tests.support.pages import V1_ENGINES, V1_MODELS, fixture_text

MODEL = "facebook/opt-125m"


def test_real_capture_reads_every_concept_with_the_values_served() -> None:
    page = parse_page(fixture_text("vllm/datadog_vllm_metrics.txt"))
    (series,) = page.series.values()
    assert (series.model, series.engine) == (MODEL, "0")  # no engine label: one engine core
    assert series.values == {
        "requests_running": 0.0, "requests_waiting": 0.0, "kv_cache_usage_ratio": 0.0,
        "preemptions_total": 0.0, "prompt_tokens_total": 5.0, "generation_tokens_total": 7.0,
        "prefix_cache_queries_total": 117.0, "prefix_cache_hits_total": 64.0,
        "cached_prompt_tokens_total": 64.0, "requests_finished_total": 1.0,
        "requests_errored_total": 0.0, "requests_aborted_total": 0.0, "prompt_tokens_by_source_total": 117.0,
    }
    assert series.by_label == {"prompt_tokens_by_source_total": {
        "local_compute": 53.0, "local_cache_hit": 64.0, "external_kv_transfer": 0.0}}
    assert series.reasons == {"length": 1.0}
    ttft = series.histograms["ttft_seconds"]
    assert ttft.count == 1.0 and ttft.sum == pytest.approx(0.31326723098754883)
    assert ttft.buckets[-1] == (math.inf, 1.0)
    assert dict(ttft.buckets)[0.5] == 1.0 and dict(ttft.buckets)[0.25] == 0.0
    # both ITL names are on the page: the current one (144 tokens) wins over the deprecated one (6)
    assert series.histograms["inter_token_latency_seconds"].count == 144.0
    assert series.histograms["queue_time_seconds"].count == 6.0
    assert set(series.histograms) == {"ttft_seconds", "inter_token_latency_seconds", "e2e_latency_seconds",
                                      "queue_time_seconds", "request_prompt_tokens", "request_generation_tokens",
                                      "prefill_time_seconds", "decode_time_seconds", "inference_time_seconds"}
    assert series.histograms["prefill_time_seconds"].count == 6.0


def test_new_vllm_names_win_over_deprecated_ones_served_alongside() -> None:
    text = """# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="m"} 0.9
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{model_name="m"} 0.4
# TYPE vllm:gpu_prefix_cache_queries_total counter
vllm:gpu_prefix_cache_queries_total{model_name="m"} 999
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{model_name="m"} 100
"""
    values = parse_page(text).series[("m", "0")].values
    assert values["kv_cache_usage_ratio"] == 0.4
    assert values["prefix_cache_queries_total"] == 100


def test_legacy_vllm_page_fills_the_same_concepts_from_the_old_names() -> None:
    metrics = VllmMetrics(legacy=True)
    metrics.set_load("m", running=3, waiting=2, kv_cache_usage=0.7)
    metrics.record(FinishedRequest("m", prompt_tokens=10, generation_tokens=5, queue_seconds=0.1,
                                   ttft_seconds=0.2, e2e_seconds=1.0, cached_prompt_tokens=4))
    values = parse_page(metrics.render()).series[("m", "0")]
    assert values.values["kv_cache_usage_ratio"] == 0.7
    assert values.values["prefix_cache_hits_total"] == 4
    assert values.histograms["inter_token_latency_seconds"].count == 4  # one per output token after the first


def test_v1_page_keeps_models_and_engine_cores_apart() -> None:
    server = VllmMetrics(("a", "b"), ("0", "1"))
    server.record(FinishedRequest("a", prompt_tokens=100, generation_tokens=10), engine="0", times=2)
    server.record(FinishedRequest("a", prompt_tokens=7, generation_tokens=3, finish_reason="length"), engine="1")
    server.record(FinishedRequest("b", prompt_tokens=1, generation_tokens=1, finish_reason="error"), engine="1")
    server.set_load("a", running=5, waiting=1, kv_cache_usage=0.25, engine="1")
    page = parse_page(server.render())
    assert set(page.series) == {("a", "0"), ("a", "1"), ("b", "0"), ("b", "1")}
    a0, a1, b0, b1 = (page.series[k].values for k in (("a", "0"), ("a", "1"), ("b", "0"), ("b", "1")))
    assert (a0["prompt_tokens_total"], a1["prompt_tokens_total"]) == (200, 7)
    assert (a0["generation_tokens_total"], a1["generation_tokens_total"]) == (20, 3)
    assert a1["requests_running"] == 5 and a1["kv_cache_usage_ratio"] == 0.25
    assert b0["requests_finished_total"] == 0 and b0["requests_errored_total"] == 0
    assert b1["requests_finished_total"] == 1 and b1["requests_errored_total"] == 1
    assert page.series[("a", "1")].reasons == {"stop": 0, "length": 1, "abort": 0, "error": 0, "repetition": 0}


def test_lora_adapters_come_from_the_latest_lora_requests_info_sample() -> None:
    page = parse_page(VllmMetrics(V1_MODELS, V1_ENGINES, lora_adapters=("sql-tuned", "support-tuned")).render())
    assert {(a.adapter, a.state) for a in page.lora} == {
        ("sql-tuned", "running"), ("support-tuned", "running"), ("support-tuned", "waiting")}


def test_sglang_page_maps_data_parallel_ranks_to_engines() -> None:
    page = parse_page(fixture_text("sglang/sglang_metrics.txt"))
    assert page.kind == "sglang"
    model = "meta-llama/Llama-3.1-8B-Instruct"
    rank0, rank1 = page.series[(model, "0")], page.series[(model, "1")]
    assert rank0.values["requests_running"] == 12 and rank1.values["requests_running"] == 9
    assert rank0.values["kv_cache_usage_ratio"] == 0.41
    assert rank0.values["prompt_tokens_total"] == 41016
    assert rank0.values["requests_finished_total"] == 40 and rank0.values["requests_aborted_total"] == 2
    assert "requests_errored_total" not in rank0.values  # SGLang does not count errors: absent, not 0
    assert rank1.values["preemptions_total"] == 1
    assert rank0.histograms["ttft_seconds"].count == 40


def test_tgi_page_takes_token_totals_from_histogram_sums_and_reasons_from_failures() -> None:
    page = parse_page(fixture_text("tgi/tgi_metrics.txt"))
    assert page.kind == "tgi"
    (series,) = page.series.values()
    assert (series.model, series.engine) == ("", "0")
    assert series.values["prompt_tokens_total"] == series.histograms["request_prompt_tokens"].sum == 28001
    assert series.values["generation_tokens_total"] == 5465
    assert series.reasons == {"completed": 30, "error": 2, "abort": 1}
    assert series.values["requests_errored_total"] == 2 and series.values["requests_aborted_total"] == 1
    assert series.values["requests_waiting"] == 4 and series.values["requests_running"] == 7
    assert "ttft_seconds" not in series.histograms  # TGI has no TTFT histogram


def test_unknown_families_are_counted_and_client_library_families_ignored() -> None:
    text = fixture_text("vllm/datadog_vllm_metrics.txt") + (
        "# HELP vllm:brand_new_thing_total Something from a future release.\n"
        "# TYPE vllm:brand_new_thing_total counter\n"
        'vllm:brand_new_thing_total{model_name="facebook/opt-125m"} 3.0\n'
        "# TYPE vllm:other_new_gauge gauge\n"
        "vllm:other_new_gauge 1\n"
    )
    page = parse_page(text)
    assert page.unmapped == {"vllm:brand_new_thing_total", "vllm:other_new_gauge"}
    assert page.series[(MODEL, "0")].values["prompt_tokens_total"] == 5.0


def test_a_page_without_type_lines_is_read_too() -> None:
    text = ('vllm:prompt_tokens_total{model_name="m",engine="1"} 12\n'
            'vllm:num_requests_running{model_name="m",engine="1"} 2\n'
            'vllm:mystery{model_name="m"} 1\n')
    page = parse_page(text)
    assert page.series[("m", "1")].values == {"prompt_tokens_total": 12, "requests_running": 2}
    assert page.unmapped == {"vllm:mystery"}


def test_untyped_samples_after_a_skipped_family_are_not_lost() -> None:
    text = ("# TYPE vllm:request_params_n histogram\n"
            'vllm:request_params_n_bucket{le="+Inf",model_name="m"} 1\n'
            'vllm:request_params_n_count{model_name="m"} 1\n'
            'vllm:request_params_n_sum{model_name="m"} 1\n'
            'vllm:generation_tokens_total{model_name="m"} 42\n')
    assert parse_page(text).series[("m", "0")].values == {"generation_tokens_total": 42}


def test_windows_line_endings_are_accepted() -> None:
    text = fixture_text("vllm/datadog_vllm_metrics.txt").replace("\n", "\r\n")
    page = parse_page(text)
    assert page.unmapped == frozenset()
    assert page.series[(MODEL, "0")].values["generation_tokens_total"] == 7.0


@pytest.mark.parametrize("body", [
    "",
    "<html><body>502 Bad Gateway</body></html>\n",
    "this is not { a metrics page\n",
    '{"object": "error", "message": "not found"}\n',
    "# HELP process_cpu_seconds_total CPU.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n",
])
def test_pages_that_are_not_a_known_servers_metrics_are_rejected_with_a_clear_error(body: str) -> None:
    with pytest.raises(PageError, match="expected"):
        parse_page(body)


def test_a_non_numeric_bucket_bound_is_an_error() -> None:
    text = ("# TYPE vllm:time_to_first_token_seconds histogram\n"
            'vllm:time_to_first_token_seconds_bucket{le="soon",model_name="m"} 1\n')
    with pytest.raises(PageError, match="le='soon'"):
        parse_page(text)


def test_nan_values_are_skipped_not_stored() -> None:
    text = ('# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{model_name="m"} NaN\n'
            '# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name="m"} 1\n')
    assert parse_page(text).series[("m", "0")].values == {"requests_running": 1}


@pytest.mark.parametrize("text", [
    fixture_text("vllm/datadog_vllm_metrics.txt"),
    fixture_text("sglang/sglang_metrics.txt"),
    fixture_text("tgi/tgi_metrics.txt"),
    VllmMetrics(V1_MODELS, V1_ENGINES, lora_adapters=("a", "b")).render(),
], ids=["capture", "sglang", "tgi", "v1"])
def test_skipping_unused_families_before_parsing_changes_nothing(text: str) -> None:
    assert parse_page(text) == parse_page(text, skip_unused=False)
