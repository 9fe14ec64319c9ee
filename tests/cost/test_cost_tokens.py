"""Tokens per hour from engine counters (resets, failed scrapes) and proxy records; histograms."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent.cost import histograms as hist
from agent.cost.tokens import EngineReading, RequestTokens, measure_engine, proxy_hour
from agent.samples import HistogramSnapshot
from tests.cost.cost_helpers import T0, at

H = timedelta(hours=1)


def reading(seconds: float, prompt: float | None, generation: float | None, *, up: bool = True,
            series: str = "s0", **histograms: HistogramSnapshot) -> EngineReading:
    counters = {k: v for k, v in (("prompt_tokens_total", prompt), ("generation_tokens_total", generation))
                if v is not None}
    return EngineReading(at(seconds), series, up, counters, histograms)


def test_counter_increases_add_up_and_a_restart_counts_from_zero() -> None:
    readings = [reading(0, 100, 10), reading(5, 300, 30), reading(10, 50, 5), reading(15, 150, 25)]
    hour = measure_engine(readings, T0, T0 + H)[T0]
    assert hour.prompt_tokens == 200 + 50 + 100
    assert hour.generation_tokens == 20 + 5 + 20


def test_failed_scrapes_are_skipped_and_the_increase_lands_when_data_resumes() -> None:
    readings = [reading(0, 0, 0), reading(5, None, None, up=False), reading(10, 400, 40)]
    hour = measure_engine(readings, T0, T0 + H)[T0]
    assert (hour.prompt_tokens, hour.generation_tokens) == (400, 40)


def test_engine_coverage_excludes_long_silences() -> None:
    times = [0, 5, 10, 15, 20, 300, 305, 310]
    readings = [reading(s, 0, 0) for s in times]
    hour = measure_engine(readings, T0, T0 + H)[T0]
    assert hour.observed_seconds == pytest.approx(20 + 10)


def test_series_are_summed_and_increases_at_the_range_edges_count_once() -> None:
    readings = [reading(-5, 0, 0, series="a"), reading(3595, 100, 10, series="a"), reading(3605, 150, 15, series="a"),
                reading(0, 1000, 0, series="b"), reading(1000, 1500, 0, series="b")]
    first = measure_engine(readings, T0, T0 + H)[T0]
    second = measure_engine(readings, T0 + H, T0 + 2 * H)[T0 + H]
    assert first.prompt_tokens == 100 + 500
    assert second.prompt_tokens == 50


def test_histogram_deltas_are_per_window_and_a_reset_starts_over() -> None:
    h1 = HistogramSnapshot(((100.0, 2.0), (1000.0, 3.0), (float("inf"), 3.0)), 700.0, 3.0)
    h2 = HistogramSnapshot(((100.0, 4.0), (1000.0, 6.0), (float("inf"), 6.0)), 1500.0, 6.0)
    h3 = HistogramSnapshot(((100.0, 1.0), (1000.0, 1.0), (float("inf"), 1.0)), 40.0, 1.0)
    readings = [reading(0, 0, 0, request_prompt_tokens=h1), reading(5, 10, 1, request_prompt_tokens=h2),
                reading(10, 20, 2, request_prompt_tokens=h3)]
    hour = measure_engine(readings, T0, T0 + H)[T0]
    assert hour.prompt_histogram is not None
    assert hour.prompt_histogram.count == 3 + 1
    assert hour.prompt_histogram.sum == pytest.approx(800 + 40)
    assert hour.prompt_histogram.buckets == ((100.0, 3.0), (1000.0, 4.0), (float("inf"), 4.0))
    assert hour.requests == 4


def test_split_by_thresholds_is_exact_on_bucket_edges_and_keeps_the_sum() -> None:
    h = HistogramSnapshot(((100_000.0, 8.0), (200_000.0, 9.0), (500_000.0, 10.0), (float("inf"), 10.0)),
                          sum=1_000_000.0, count=10.0)
    bands = hist.split_by_thresholds(h, [200_000])
    assert [r for r, _ in bands] == [9.0, 1.0]
    assert sum(t for _, t in bands) == pytest.approx(1_000_000)
    # midpoints: 8 x 50k + 1 x 150k below, 1 x 350k above, scaled to the exact sum
    assert bands[1][1] == pytest.approx(1_000_000 * 350_000 / (400_000 + 150_000 + 350_000))


def test_split_interpolates_inside_a_bucket() -> None:
    h = HistogramSnapshot(((100.0, 0.0), (300.0, 4.0), (float("inf"), 4.0)), sum=800.0, count=4.0)
    bands = hist.split_by_thresholds(h, [250])
    assert [r for r, _ in bands] == pytest.approx([3.0, 1.0])


def test_parse_histograms_reads_the_stored_json_and_skips_garbage() -> None:
    text = ('{"request_prompt_tokens": {"buckets": [[10, 1], ["+Inf", 2]], "sum": 30, "count": 2},'
            ' "request_generation_tokens": {"buckets": "oops"}}')
    parsed = hist.parse_histograms(text)
    assert parsed["request_prompt_tokens"].buckets == ((10.0, 1.0), (float("inf"), 2.0))
    assert "request_generation_tokens" not in parsed
    assert hist.parse_histograms("not json") == {}


def test_proxy_hour_counts_only_successful_requests_with_usage() -> None:
    records = [RequestTokens(T0, 200, 100, 10, 40), RequestTokens(T0, 200, 50, 5, 80),
               RequestTokens(T0, 500, 100, 0), RequestTokens(T0, 200, None, None)]
    summary = proxy_hour(T0, records)
    assert (summary.prompt_tokens, summary.generation_tokens, summary.requests) == (150, 15, 2)
    assert summary.cached_tokens == 40 + 50  # a cached count above the prompt is clamped to it
    assert summary.unpriced_requests == 2
