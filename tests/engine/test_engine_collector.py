"""The collector against replay servers on 127.0.0.1: real HTTP, real pages, real failures."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from agent.catalog import CATALOG
from agent.collectors.base import Collector
from agent.collectors.engine.collector import EngineCollector, build_engine_collectors
from agent.collectors.engine.windows import parse_windows
from agent.concepts.engine import ENGINE_STORED_HISTOGRAMS, ENGINE_STORED_VALUES
from agent.config import EngineSettings
from agent.errors import ConfigError, EngineScrapeError
from agent.samples import Collected, EngineSample, Point
from tests.support.clock import FakeClock
from tests.support.pages import GrowingPage, fixture_text

from .replay import PageSource, ReplayServer, V1Source

Start = Callable[..., Awaitable[ReplayServer]]
WINDOWS = parse_windows(("1m", "5m"), 5.0)


def _collector(url: str, clock: FakeClock | None = None, timeout_s: float = 2.0, interval_s: float = 5.0,
               ) -> EngineCollector:
    return EngineCollector(url, host="node-1", interval_s=interval_s, timeout_s=timeout_s, windows=WINDOWS,
                           clock=clock or time.monotonic)


async def _scrapes(collector: EngineCollector, clock: FakeClock, n: int) -> Collected:
    result = None
    for _ in range(n):
        result = await collector.collect()
        clock.advance(5.0)
    assert result is not None
    return result


def _points(collected: Collected, name: str) -> list[Point]:
    return [p for p in collected.points if p.name == name]


def _assert_points_match_the_catalog(collected: Collected) -> None:
    for point in collected.points:
        spec = CATALOG.get(point.name)
        assert spec is not None, f"{point.name} is not in the catalog"
        assert [k for k, _ in point.labels] == sorted(spec.labels), point
        assert point.value == point.value, point  # no NaN


async def test_capture_replay_yields_rows_raw_points_and_slis(replay: Start, capture_page: GrowingPage,
                                                            clock: FakeClock) -> None:
    server = await replay(capture_page)
    collector = _collector(server.url, clock)
    try:
        result = await _scrapes(collector, clock, 13)
    finally:
        await collector.close()
    as_protocol: Collector = collector  # checked by mypy: the runner's Collector protocol
    assert as_protocol.interval_s == 5.0
    assert result.source == f"engine:{server.url}" == collector.name
    (row,) = result.rows
    assert isinstance(row, EngineSample)
    assert (row.server, row.kind, row.model, row.engine, row.up) == (server.url, "vllm", "facebook/opt-125m",
                                                                    "0", True)
    assert set(row.values) <= set(ENGINE_STORED_VALUES) and set(row.histograms) <= set(ENGINE_STORED_HISTOGRAMS)
    assert row.values["prompt_tokens_total"] == 5 + 13 * 10  # raw cumulative, not a rate
    assert set(row.histograms) == set(ENGINE_STORED_HISTOGRAMS)
    (up,) = _points(result, "campwatch_engine_up")
    assert up.value == 1.0 and dict(up.labels) == {"host": "node-1", "server": server.url, "kind": "vllm"}
    (rate,) = [p for p in _points(result, "campwatch_engine_generation_tokens_per_second")
               if dict(p.labels)["window"] == "1m"]
    assert rate.value == pytest.approx(2.0)
    assert len(_points(result, "campwatch_engine_ttft_seconds")) == 6  # 3 quantiles x 2 windows
    assert _points(result, "campwatch_engine_unmapped_metrics")[0].value == 0
    _assert_points_match_the_catalog(result)


async def test_two_models_and_two_engine_cores_are_kept_apart(replay: Start, v1_source: V1Source,
                                                             clock: FakeClock) -> None:
    server = await replay(v1_source)
    collector = _collector(server.url, clock)
    try:
        result = await _scrapes(collector, clock, 4)
    finally:
        await collector.close()
    keys = {(r.model, r.engine) for r in result.rows if isinstance(r, EngineSample)}
    models = set(v1_source.server.models)
    assert keys == {(m, e) for m in models for e in ("0", "1")}
    raw = _points(result, "campwatch_engine_prompt_tokens_total")
    assert {(dict(p.labels)["model"], dict(p.labels)["engine"]) for p in raw} == keys
    assert all(p.value == 4 * 100 for p in raw)  # one 100-token request per scrape per core
    sli = [p for p in _points(result, "campwatch_engine_prompt_tokens_per_second") if dict(p.labels)["window"] == "1m"]
    assert {dict(p.labels)["model"] for p in sli} == models
    assert all(p.value == pytest.approx(2 * 100 / 5) for p in sli)  # two cores summed
    lora = _points(result, "campwatch_engine_lora_adapter_active")
    assert {(dict(p.labels)["adapter"], dict(p.labels)["state"]) for p in lora} == {
        ("sql-tuned", "running"), ("support-tuned", "running"), ("support-tuned", "waiting")}
    _assert_points_match_the_catalog(result)


@pytest.mark.parametrize(("path", "kind"), [("sglang/sglang_metrics.txt", "sglang"), ("tgi/tgi_metrics.txt", "tgi")])
async def test_sglang_and_tgi_servers_are_detected_from_their_pages(replay: Start, clock: FakeClock, path: str,
                                                                   kind: str) -> None:
    server = await replay(GrowingPage(fixture_text(path)))
    collector = _collector(server.url, clock)
    try:
        result = await _scrapes(collector, clock, 3)
    finally:
        await collector.close()
    assert {r.kind for r in result.rows if isinstance(r, EngineSample)} == {kind}
    assert _points(result, "campwatch_engine_up")[0].labels == (("host", "node-1"), ("kind", kind),
                                                               ("server", server.url))
    assert _points(result, "campwatch_engine_requests_per_second")
    _assert_points_match_the_catalog(result)


async def test_server_restart_keeps_rates_non_negative_and_flat(replay: Start, capture_page: GrowingPage,
                                                               clock: FakeClock,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    server = await replay(capture_page)
    collector = _collector(server.url, clock)
    try:
        await _scrapes(collector, clock, 10)
        server.restart()
        with caplog.at_level(logging.INFO, logger="agent.collectors.engine.collector"):
            result = await _scrapes(collector, clock, 3)
    finally:
        await collector.close()
    assert "restarted" in caplog.text
    for point in result.points:
        assert point.value >= 0, point
    (row,) = result.rows
    assert isinstance(row, EngineSample) and row.values["prompt_tokens_total"] == 30  # raw, back near zero
    rates = _points(result, "campwatch_engine_prompt_tokens_per_second")
    assert [p.value for p in rates] == [pytest.approx(2.0)] * 2


@pytest.mark.parametrize("mode", ["http500", "garbage", "binary", "html", "empty"])
async def test_a_failed_scrape_raises_with_an_up_zero_gap_and_nothing_else(replay: Start, capture_page: GrowingPage,
                                                                          clock: FakeClock, mode: str) -> None:
    server = await replay(capture_page)
    collector = _collector(server.url, clock)
    try:
        await _scrapes(collector, clock, 2)
        server.mode = mode  # type: ignore[assignment]
        with pytest.raises(EngineScrapeError) as caught:
            await collector.collect()
        capture_page.advance()  # the server kept serving while its /metrics failed
        server.mode = "ok"
        clock.advance(5.0)
        recovered = await collector.collect()
    finally:
        await collector.close()
    failure = caught.value
    assert isinstance(failure, EngineScrapeError)
    assert failure.server == server.url and server.url in str(failure)
    gap = failure.collected
    assert gap is not None
    assert gap.source == collector.name
    assert gap.points == (Point("campwatch_engine_up", 0.0, (("host", "node-1"), ("kind", "vllm"),
                                                             ("server", server.url))),)
    (row,) = gap.rows
    assert isinstance(row, EngineSample)
    assert (row.up, row.model, row.engine, dict(row.values)) == (False, "", "", {})
    # the next good scrape carries on: rates span the failed interval
    rate = [p for p in _points(recovered, "campwatch_engine_prompt_tokens_per_second")
            if dict(p.labels)["window"] == "1m"]
    assert rate[0].value == pytest.approx(2.0)


async def test_http_500_message_names_the_status(replay: Start, capture_page: GrowingPage) -> None:
    server = await replay(capture_page)
    server.mode = "http500"
    collector = _collector(server.url)
    try:
        with pytest.raises(EngineScrapeError, match="HTTP 500"):
            await collector.collect()
    finally:
        await collector.close()


async def test_a_slow_server_times_out_within_the_scrape_timeout(replay: Start, capture_page: GrowingPage) -> None:
    server = await replay(capture_page)
    server.mode, server.delay_s = "slow", 2.0
    collector = _collector(server.url, timeout_s=0.3, interval_s=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(EngineScrapeError, match=r"within 0\.3s") as caught:
            await collector.collect()
    finally:
        await collector.close()
    assert time.monotonic() - started < 1.5
    gap = caught.value.collected
    assert gap is not None
    assert gap.points[0].value == 0.0
    assert gap.points[0].labels[1] == ("kind", "unknown")  # never scraped successfully


async def test_a_hung_server_does_not_stall_another_collector(replay: Start, capture_page: GrowingPage,
                                                             v1_source: V1Source) -> None:
    hung = await replay(capture_page)
    hung.mode = "hang"
    healthy = await replay(v1_source)
    slow_collector = _collector(hung.url, timeout_s=0.8, interval_s=1.0)
    fast_collector = _collector(healthy.url, timeout_s=0.8, interval_s=1.0)
    finished: dict[str, float] = {}
    started = time.monotonic()

    async def run(collector: EngineCollector) -> Collected | BaseException:
        try:
            return await collector.collect()
        except EngineScrapeError as exc:
            return exc
        finally:
            finished[collector.url] = time.monotonic() - started

    try:
        hung_result, healthy_result = await asyncio.gather(run(slow_collector), run(fast_collector))
    finally:
        await slow_collector.close()
        await fast_collector.close()
    assert isinstance(hung_result, EngineScrapeError)
    assert isinstance(healthy_result, Collected)
    assert finished[healthy.url] < finished[hung.url]
    assert finished[hung.url] < 1.6  # bounded by its own timeout


async def test_connection_refused_is_a_scrape_failure() -> None:
    collector = _collector("http://127.0.0.1:9/metrics")
    try:
        with pytest.raises(EngineScrapeError, match="request failed"):
            await collector.collect()
    finally:
        await collector.close()


async def test_unmapped_families_are_counted_and_logged_once(replay: Start, clock: FakeClock,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    text = fixture_text("vllm/datadog_vllm_metrics.txt") + (
        "# TYPE vllm:future_metric_total counter\nvllm:future_metric_total 1\n")
    server = await replay(GrowingPage(text))
    collector = _collector(server.url, clock)
    try:
        with caplog.at_level(logging.INFO, logger="agent.collectors.engine.collector"):
            result = await _scrapes(collector, clock, 3)
    finally:
        await collector.close()
    assert caplog.text.count("vllm:future_metric_total") == 1
    (gauge,) = _points(result, "campwatch_engine_unmapped_metrics")
    assert gauge.value == 1 and dict(gauge.labels) == {"host": "node-1", "server": server.url}


async def test_factory_builds_one_collector_per_url_with_its_own_session(replay: Start, capture_page: GrowingPage,
                                                                          v1_source: V1Source) -> None:
    a, b = await replay(capture_page), await replay(v1_source)
    sessions: list[aiohttp.ClientSession] = []

    def factory() -> aiohttp.ClientSession:
        session = aiohttp.ClientSession()
        sessions.append(session)
        return session

    settings = EngineSettings(urls=(a.url, b.url), interval_s=2.0)
    collectors = build_engine_collectors(settings, "node-1", session_factory=factory)
    assert [c.name for c in collectors] == [f"engine:{a.url}", f"engine:{b.url}"]
    assert all(c.interval_s == 2.0 for c in collectors)
    try:
        results = await asyncio.gather(*(c.collect() for c in collectors))
    finally:
        for c in collectors:
            await c.close()
    assert [r.source for r in results] == [c.name for c in collectors]
    assert len(sessions) == 2 and all(s.closed for s in sessions)


def test_factory_rejects_bad_windows_and_duplicate_urls_with_every_problem() -> None:
    settings = EngineSettings(urls=("http://a/metrics", "http://a/metrics"), windows=("1m", "5min", "2s"))
    with pytest.raises(ConfigError) as caught:
        build_engine_collectors(settings, "h")
    message = str(caught.value)
    assert "engine.windows[1]" in message and "'5min'" in message
    assert "engine.windows[2]" in message and "shorter than the scrape interval" in message
    settings = EngineSettings(urls=("http://a/metrics", "http://a/metrics"))
    with pytest.raises(ConfigError, match=r"engine.urls\[1\]: http://a/metrics is listed twice"):
        build_engine_collectors(settings, "h")


def test_timeout_must_be_shorter_than_the_interval() -> None:
    with pytest.raises(ValueError, match="shorter than interval_s"):
        _collector("http://a/metrics", timeout_s=5.0, interval_s=5.0)


def test_the_replay_source_protocol_is_satisfied() -> None:
    sources: list[PageSource] = [GrowingPage("x 1\n")]
    assert sources
