"""Windowed SLIs from successive scrapes, checked against values computed by hand."""

from __future__ import annotations

import pytest

from agent.collectors.engine.derive import SliDeriver
from agent.collectors.engine.parse import parse_page
from agent.collectors.engine.windows import Window, parse_window
from agent.samples import Point
from agent.sim.vllm_metrics import FinishedRequest, VllmMetrics
from tests.support.pages import GrowingPage, fixture_text

MODEL = "facebook/opt-125m"
W1, W5 = parse_window("1m"), parse_window("5m")


def _value(points: list[Point], name: str, **want: str) -> float:
    found = [p.value for p in points if p.name == name and all(dict(p.labels).get(k) == v for k, v in want.items())]
    assert len(found) == 1, f"{name} {want}: {len(found)} points"
    return found[0]


def _names(points: list[Point]) -> set[str]:
    return {p.name for p in points}


def _capture() -> GrowingPage:
    # every 5 s scrape: +10 prompt tokens etc., 40 prefix-cache token lookups of which 10 hit,
    # and 2 TTFT observations of 0.3 s (bucket 0.25 < x <= 0.5)
    return GrowingPage(fixture_text("vllm/datadog_vllm_metrics.txt"),
                       observed_value={"vllm:time_to_first_token_seconds": 0.3,
                                       "vllm:inter_token_latency_seconds": 0.03},
                       counter_steps={"vllm:prefix_cache_queries_total": 40.0})


def _run(deriver: SliDeriver, source: GrowingPage | VllmMetrics, scrapes: int, t0: float = 0.0,
         interval: float = 5.0) -> float:
    t = t0
    for _ in range(scrapes):
        if isinstance(source, GrowingPage):
            source.advance()
        deriver.observe(t, parse_page(source.render()))
        t += interval
    return t - interval


def test_rates_shares_and_ttft_quantiles_match_hand_computation_on_the_real_capture() -> None:
    deriver = SliDeriver((W1, W5), interval_s=5.0)
    _run(deriver, _capture(), scrapes=13)  # 60 s of scrapes
    points = deriver.points("h", "s")
    for window in ("1m", "5m"):
        sel = {"model": MODEL, "window": window}
        assert _value(points, "campwatch_engine_prompt_tokens_per_second", **sel) == pytest.approx(10 / 5)
        assert _value(points, "campwatch_engine_generation_tokens_per_second", **sel) == pytest.approx(2.0)
        assert _value(points, "campwatch_engine_requests_per_second", **sel) == pytest.approx(2.0)
        assert _value(points, "campwatch_engine_request_errors_per_second", **sel) == 0.0
        assert _value(points, "campwatch_engine_finish_reason_ratio", reason="length", **sel) == 1.0
        # 10 hits of 40 lookups per scrape
        assert _value(points, "campwatch_engine_prefix_cache_hit_ratio", **sel) == pytest.approx(0.25)
        # all window observations are 0.3 s, in the (0.25, 0.5] bucket: 0.25 + 0.25 * q
        assert _value(points, "campwatch_engine_ttft_seconds", quantile="0.5", **sel) == pytest.approx(0.375)
        assert _value(points, "campwatch_engine_ttft_seconds", quantile="0.9", **sel) == pytest.approx(0.475)
        assert _value(points, "campwatch_engine_ttft_seconds", quantile="0.99", **sel) == pytest.approx(0.4975)
        # this capture's ITL buckets are 0.01, 0.1, +Inf: 0.03 s lies in (0.01, 0.1] -> 0.01 + 0.09 * 0.5
        assert _value(points, "campwatch_engine_inter_token_latency_seconds", quantile="0.5",
                      **sel) == pytest.approx(0.055)


def test_a_server_restart_gives_neither_negative_rates_nor_a_spike() -> None:
    page = _capture()
    deriver = SliDeriver((W1, W5), interval_s=5.0)
    t = _run(deriver, page, scrapes=30)
    page.restart()  # every counter and histogram back near zero
    for _ in range(8):
        t += 5.0
        page.advance()
        assert deriver.observe(t, parse_page(page.render())) in (True, False)
        points = deriver.points("h", "s")
        for p in points:
            assert p.value >= 0, p
        for window in ("1m", "5m"):
            sel = {"model": MODEL, "window": window}
            # the true rate never changed: 10 tokens per 5 s before, through and after the restart
            assert _value(points, "campwatch_engine_prompt_tokens_per_second", **sel) == pytest.approx(2.0)
            assert _value(points, "campwatch_engine_ttft_seconds", quantile="0.5", **sel) == pytest.approx(0.375)


def test_restart_is_reported_once_when_counters_go_back() -> None:
    page = _capture()
    deriver = SliDeriver((W1,), interval_s=5.0)
    t = _run(deriver, page, scrapes=3)
    page.restart()
    page.advance()
    assert deriver.observe(t + 5, parse_page(page.render())) is True
    page.advance()
    assert deriver.observe(t + 10, parse_page(page.render())) is False


def test_quantiles_sum_buckets_across_engine_cores() -> None:
    server = VllmMetrics(("m",), ("0", "1"))
    deriver = SliDeriver((W1,), interval_s=5.0)
    t = 0.0
    for _ in range(5):
        server.record(FinishedRequest("m", ttft_seconds=0.3), engine="0")   # (0.25, 0.5]
        server.record(FinishedRequest("m", ttft_seconds=3.0), engine="1")   # (2.5, 5]
        deriver.observe(t, parse_page(server.render()))
        t += 5
    points = deriver.points("h", "s")
    sel = {"model": "m", "window": "1m"}
    # n observations in each bucket: rank n lands on the top of the 0.5 bucket
    assert _value(points, "campwatch_engine_ttft_seconds", quantile="0.5", **sel) == pytest.approx(0.5)
    # rank 1.8n: 2.5 + 2.5 * 0.8n / n
    assert _value(points, "campwatch_engine_ttft_seconds", quantile="0.9", **sel) == pytest.approx(4.5)
    assert _value(points, "campwatch_engine_ttft_seconds", quantile="0.99", **sel) == pytest.approx(4.95)
    # two engines each finishing one 100-token request per 5 s
    assert _value(points, "campwatch_engine_prompt_tokens_per_second", **sel) == pytest.approx(200 / 5)
    assert not any(dict(p.labels).get("engine") for p in points)  # SLIs are per model, not per core


def _engine_page(prompt: dict[str, float], running: dict[str, float], kv: dict[str, float]) -> str:
    lines = ["# TYPE vllm:prompt_tokens_total counter"]
    lines += [f'vllm:prompt_tokens_total{{model_name="m",engine="{e}"}} {v}' for e, v in prompt.items()]
    lines += ["# TYPE vllm:num_requests_running gauge"]
    lines += [f'vllm:num_requests_running{{model_name="m",engine="{e}"}} {v}' for e, v in running.items()]
    lines += ["# TYPE vllm:kv_cache_usage_perc gauge"]
    lines += [f'vllm:kv_cache_usage_perc{{model_name="m",engine="{e}"}} {v}' for e, v in kv.items()]
    return "\n".join(lines) + "\n"


def test_one_engine_core_restarting_does_not_look_like_a_drop_for_the_model() -> None:
    deriver = SliDeriver((W1,), interval_s=5.0)
    # engine 0: 1000, 1100, 1200, 1300; engine 1: 5000, 5100, restart -> 40, 140
    series = [(1000, 5000), (1100, 5100), (1200, 40), (1300, 140)]
    for i, (e0, e1) in enumerate(series):
        deriver.observe(5.0 * i, parse_page(_engine_page({"0": e0, "1": e1}, {"0": 2, "1": 3},
                                                         {"0": 0.2, "1": 0.6})))
    points = deriver.points("h", "s")
    # engine 0: +300; engine 1: +100, then +40 since its restart, then +100 -> 540 over 15 s
    assert _value(points, "campwatch_engine_prompt_tokens_per_second", window="1m") == pytest.approx(540 / 15)
    assert _value(points, "campwatch_engine_requests_running_avg", window="1m") == pytest.approx(5.0)
    assert _value(points, "campwatch_engine_kv_cache_usage_avg_ratio", window="1m") == pytest.approx(0.4)
    assert _value(points, "campwatch_engine_kv_cache_usage_max_ratio", window="1m") == pytest.approx(0.6)


def test_a_gap_of_failed_scrapes_is_spanned_not_filled_with_zeros() -> None:
    deriver = SliDeriver((W1,), interval_s=5.0)
    for t, value in ((0, 0), (5, 50), (10, 100), (30, 300)):  # 15, 20, 25 failed
        deriver.observe(t, parse_page(_engine_page({"0": value}, {"0": 1}, {"0": 0.1})))
    points = deriver.points("h", "s")
    assert _value(points, "campwatch_engine_prompt_tokens_per_second", window="1m") == pytest.approx(10.0)


def test_each_window_only_sees_its_own_span() -> None:
    deriver = SliDeriver((W1, W5), interval_s=5.0)
    value, t = 0.0, 0.0
    for step in range(180):  # 10 min at 2 tokens/s, then 5 min at 6 tokens/s
        value += 10 if step < 120 else 30
        deriver.observe(t, parse_page(_engine_page({"0": value}, {"0": 1}, {"0": 0.1})))
        t += 5
    points = deriver.points("h", "s")
    assert _value(points, "campwatch_engine_prompt_tokens_per_second", window="1m") == pytest.approx(6.0)
    # the 5 m window starts one scrape before the rate change at most (half an interval of slack)
    assert _value(points, "campwatch_engine_prompt_tokens_per_second", window="5m") == pytest.approx(6.0, rel=0.02)
    assert len(deriver._history) <= 300 / 5 + 3  # memory stays bounded by the longest window


def test_a_single_scrape_gives_gauges_but_no_rates_or_quantiles() -> None:
    deriver = SliDeriver((W1,), interval_s=5.0)
    deriver.observe(0.0, parse_page(VllmMetrics(("m",)).render()))
    names = _names(deriver.points("h", "s"))
    assert "campwatch_engine_requests_running_avg" in names
    assert "campwatch_engine_prompt_tokens_per_second" not in names
    assert "campwatch_engine_ttft_seconds" not in names


def test_no_traffic_in_the_window_gives_zero_rates_and_no_latency_or_ratio() -> None:
    server = VllmMetrics(("m",))
    deriver = SliDeriver((W1,), interval_s=5.0)
    _run(deriver, server, scrapes=4)
    points = deriver.points("h", "s")
    assert _value(points, "campwatch_engine_prompt_tokens_per_second", window="1m") == 0.0
    assert "campwatch_engine_ttft_seconds" not in _names(points)
    assert "campwatch_engine_prefix_cache_hit_ratio" not in _names(points)
    assert "campwatch_engine_finish_reason_ratio" not in _names(points)


def test_sglang_prefix_hit_ratio_comes_from_cached_over_prompt_tokens() -> None:
    page = GrowingPage(fixture_text("sglang/sglang_metrics.txt"),
                       counter_steps={"sglang:prompt_tokens_total": 100.0, "sglang:cached_tokens_total": 30.0})
    deriver = SliDeriver((W1,), interval_s=5.0)
    _run(deriver, page, scrapes=4)
    points = deriver.points("h", "s")
    sel = {"model": "meta-llama/Llama-3.1-8B-Instruct", "window": "1m"}
    assert _value(points, "campwatch_engine_prefix_cache_hit_ratio", **sel) == pytest.approx(0.3)
    assert _value(points, "campwatch_engine_request_aborts_per_second", **sel) == pytest.approx(2.0)
    assert "campwatch_engine_request_errors_per_second" not in _names(points)  # SGLang has no error counter


def test_tgi_token_rates_come_from_histogram_sums() -> None:
    page = GrowingPage(fixture_text("tgi/tgi_metrics.txt"), observations=3,
                       observed_value={"tgi_request_input_length": 409.5, "tgi_request_duration": 1.0})
    deriver = SliDeriver((W1,), interval_s=5.0)
    _run(deriver, page, scrapes=5)
    points = deriver.points("h", "s")
    sel = {"model": "", "window": "1m"}
    assert _value(points, "campwatch_engine_prompt_tokens_per_second", **sel) == pytest.approx(3 * 409.5 / 5)
    assert "campwatch_engine_ttft_seconds" not in _names(points)
    # 1.0 s lies in the duration bucket (0.8649, 1.2974]
    p50 = _value(points, "campwatch_engine_e2e_latency_seconds", quantile="0.5", **sel)
    assert 0.86 < p50 <= 1.3


def test_a_window_needs_at_least_one_window() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SliDeriver((), interval_s=5.0)
    assert Window("1m", 60.0) == W1
