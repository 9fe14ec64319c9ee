"""Hostile or broken /metrics pages (issue 9, finding 6; redirects: finding 8): every one is a gap
or a rejected, counted sample, with bounded memory and log lines, never a poisoned value or rate."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from agent.collectors.engine.collector import EngineCollector, build_engine_collectors
from agent.collectors.engine.parse import UNMAPPED_NAMES_MAX, parse_page
from agent.collectors.engine.windows import parse_windows
from agent.config import EngineSettings
from agent.errors import EngineScrapeError, PageError
from agent.loglimit import MESSAGE_CHARS_MAX
from agent.samples import Collected, EngineSample
from tests.support.clock import FakeClock
from tests.support.net import serve as serve_app

WINDOWS = parse_windows(("1m",), 5.0)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[[Handler], Awaitable[str]]


def _page(prompt: str = "100", generation: str = "50", running: str = "1", model: str = "m") -> str:
    return (f"# TYPE vllm:prompt_tokens_total counter\nvllm:prompt_tokens_total{{model_name=\"{model}\"}} {prompt}\n"
            f"# TYPE vllm:generation_tokens_total counter\n"
            f"vllm:generation_tokens_total{{model_name=\"{model}\"}} {generation}\n"
            f"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{{model_name=\"{model}\"}} {running}\n")


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start a one-route server on 127.0.0.1 answering GET /metrics with `handler`; returns its URL."""
    async with contextlib.AsyncExitStack() as servers:

        async def start(handler: Handler) -> str:
            app = web.Application()
            app.router.add_get("/metrics", handler)
            return await servers.enter_async_context(serve_app(app, handle_signals=False)) + "/metrics"

        yield start


def _collector(url: str, clock: FakeClock | None = None, **limits: Any) -> EngineCollector:
    return EngineCollector(url, host="node-1", interval_s=5.0, timeout_s=4.0, windows=WINDOWS,
                           clock=clock or FakeClock(), **limits)


async def _collect(collector: EngineCollector) -> Collected:
    try:
        return await collector.collect()
    finally:
        await collector.close()


def _value(collected: Collected, name: str, **match: str) -> float:
    (point,) = [p for p in collected.points if p.name == name and match.items() <= dict(p.labels).items()]
    return point.value


# --- page size ---------------------------------------------------------------------------------------

async def test_a_page_over_the_default_8_mib_limit_is_a_gap_naming_the_setting(serve: Serve) -> None:
    body = _page() + "# TYPE vllm:padding gauge\n" + 'vllm:padding{x="y"} 1\n' * (9 * 1024 * 1024 // 22)

    async def handler(_: web.Request) -> web.Response:
        return web.Response(text=body)

    with pytest.raises(EngineScrapeError) as caught:
        await _collect(_collector(await serve(handler)))
    message = str(caught.value)
    assert "engine.max_page_bytes" in message and str(8 * 1024 * 1024) in message
    gap = caught.value.collected
    assert gap is not None
    (row,) = gap.rows
    assert isinstance(row, EngineSample) and row.up is False
    assert gap.points[0].value == 0.0


async def test_a_chunked_page_without_length_stops_being_read_past_the_limit(serve: Serve) -> None:
    sent = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse()
        await response.prepare(request)  # no Content-Length: chunked, endless
        try:
            for _ in range(10_000):
                await response.write(b"# HELP vllm:x " + b"a" * 65_536 + b"\n")
                sent += 1
        except (ConnectionError, asyncio.CancelledError):
            pass
        return response

    with pytest.raises(EngineScrapeError, match=r"engine\.max_page_bytes \(1048576 bytes"):
        await _collect(_collector(await serve(handler), max_page_bytes=1 << 20))
    assert sent < 10_000  # the collector hung up instead of reading the endless page


# --- series, model/engine pairs, unknown families ---------------------------------------------------

def test_more_samples_than_max_series_is_refused_before_parsing() -> None:
    buckets = "".join(f'vllm:time_to_first_token_seconds_bucket{{model_name="m",le="{i}"}} {i}\n'
                      for i in range(50_001))
    page = _page() + "# TYPE vllm:time_to_first_token_seconds histogram\n" + buckets
    with pytest.raises(PageError, match=r"more than 50000 samples .*engine\.max_series"):
        parse_page(page)
    small = _page() + "# TYPE vllm:time_to_first_token_seconds histogram\n" + buckets[:buckets.index('le="90"')]
    small = small[:small.rindex("\n") + 1]  # 3 + 90 samples
    assert parse_page(small, max_series=100).series[("m", "0")].values["prompt_tokens_total"] == 100
    with pytest.raises(PageError, match="more than 90 samples"):
        parse_page(small, max_series=90)


def test_more_model_engine_pairs_than_max_models_is_refused() -> None:
    page = "# TYPE vllm:num_requests_running gauge\n" + "".join(
        f'vllm:num_requests_running{{model_name="model-{i}"}} 1\n' for i in range(257))
    with pytest.raises(PageError, match=r"more than 256 \(model, engine\) pairs .*engine\.max_models"):
        parse_page(page)
    assert len(parse_page(page, max_models=300).series) == 257


def test_unknown_family_names_are_kept_up_to_the_cap_and_the_rest_only_counted() -> None:
    unknown = "".join(f"# TYPE vllm:future_{i} gauge\nvllm:future_{i} 1\n" for i in range(UNMAPPED_NAMES_MAX + 500))
    huge = "vllm:" + "n" * 100_000
    page = parse_page(_page() + unknown + f"# TYPE {huge} gauge\n{huge} 1\n")
    assert len(page.unmapped) == UNMAPPED_NAMES_MAX
    assert page.unmapped_overflow == 500 + 1  # the 100k-character name is counted, not kept
    assert max(len(name) for name in page.unmapped) < 100


async def test_unknown_families_are_counted_in_full_but_logged_in_a_bounded_line(
        serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    names = [f"vllm:future_family_with_a_long_name_{'x' * 150}_{i}" for i in range(3000)]
    body = _page() + "".join(f"# TYPE {n} gauge\n{n} 1\n" for n in names)

    async def handler(_: web.Request) -> web.Response:
        return web.Response(text=body)

    collector = _collector(await serve(handler))
    with caplog.at_level(logging.INFO, logger="agent.collectors.engine.collector"):
        try:
            first = await collector.collect()
            await collector.collect()
        finally:
            await collector.close()
    assert _value(first, "campwatch_engine_unmapped_metrics") == 3000
    assert len(collector._logged_unmapped) == UNMAPPED_NAMES_MAX  # remembered names are bounded
    lines = [r.getMessage() for r in caplog.records if r.name == "agent.collectors.engine.collector"]
    assert len(lines) == 2  # the first 1000 names (listing 50), then one line saying the rest is only counted
    assert all(len(line) <= MESSAGE_CHARS_MAX + 60 for line in lines)
    assert lines[0].startswith(f"{collector.url}: 1000 vllm metric families are not in campwatch's map")
    assert lines[0].endswith("... [log line truncated: 9735 chars]")  # 50 names listed, then cut to length
    assert "not logged" in lines[1]


# --- rejected values ---------------------------------------------------------------------------------

def test_nan_inf_and_negative_counter_samples_are_rejected_per_series_and_counted() -> None:
    page = parse_page(
        "# TYPE vllm:prompt_tokens_total counter\n"
        'vllm:prompt_tokens_total{model_name="a"} NaN\nvllm:prompt_tokens_total{model_name="b"} 100\n'
        "# TYPE vllm:generation_tokens_total counter\n"
        'vllm:generation_tokens_total{model_name="a"} -5\nvllm:generation_tokens_total{model_name="b"} 50\n'
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{model_name="a"} +Inf\nvllm:num_requests_running{model_name="b"} 1\n'
        "# TYPE vllm:time_to_first_token_seconds histogram\n"
        'vllm:time_to_first_token_seconds_bucket{model_name="b",le="0.1"} NaN\n'
        'vllm:time_to_first_token_seconds_bucket{model_name="b",le="+Inf"} 2\n'
        'vllm:time_to_first_token_seconds_sum{model_name="b"} 0.3\n'
        'vllm:time_to_first_token_seconds_count{model_name="b"} 2\n')
    a, b = page.series[("a", "0")], page.series[("b", "0")]
    assert a.values == {}  # each bad sample is dropped; nothing of model a was usable
    assert b.values == {"prompt_tokens_total": 100.0, "generation_tokens_total": 50.0, "requests_running": 1.0}
    assert "ttft_seconds" not in b.histograms  # a histogram with a NaN bucket is no histogram
    assert page.rejected == {"nan": 2, "inf": 1, "negative_counter": 1}


async def test_a_negative_counter_is_neither_stored_nor_read_as_a_restart_in_rates(
        serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    pages = [_page(prompt="100"), _page(prompt="-1e9"), _page(prompt="NaN"), _page(prompt="120")]
    served = iter(pages)

    async def handler(_: web.Request) -> web.Response:
        return web.Response(text=next(served))

    clock = FakeClock()
    collector = _collector(await serve(handler), clock)
    results = []
    with caplog.at_level(logging.INFO, logger="agent.collectors.engine.collector"):
        try:
            for _ in pages:
                results.append(await collector.collect())
                clock.advance(5.0)
        finally:
            await collector.close()
    assert "restarted" not in caplog.text
    stored = [r.values.get("prompt_tokens_total") for c in results for r in c.rows if isinstance(r, EngineSample)]
    assert stored == [100.0, None, None, 120.0]
    rate = _value(results[-1], "campwatch_engine_prompt_tokens_per_second", window="1m")
    assert rate == pytest.approx(20 / 15)  # 100 -> 120 over the 15 s, no spike from a fake restart
    last = results[-1]
    assert [_value(last, "campwatch_engine_rejected_samples_total", reason=r)
            for r in ("nan", "inf", "negative_counter")] == [1.0, 0.0, 1.0]
    assert caplog.text.count("samples rejected") == 2  # once per reason


# --- redirects ---------------------------------------------------------------------------------------

async def test_a_redirect_to_another_port_is_not_followed_and_names_the_target_masked(serve: Serve) -> None:
    canary_hits = 0

    async def canary(_: web.Request) -> web.Response:
        nonlocal canary_hits
        canary_hits += 1
        return web.Response(text=_page())

    canary_url = await serve(canary)
    elsewhere = canary_url.replace("http://", "http://scraper:s3cret-pw@")

    async def redirect(_: web.Request) -> web.Response:
        raise web.HTTPFound(elsewhere)

    with pytest.raises(EngineScrapeError) as caught:
        await _collect(_collector(await serve(redirect)))
    message = str(caught.value)
    assert "HTTP 302 redirect to http://***:***@127.0.0.1:" in message and "not followed" in message
    assert "s3cret-pw" not in message
    assert canary_hits == 0


async def test_a_redirect_on_the_same_host_and_port_is_followed(serve: Serve) -> None:
    app = web.Application()

    async def moved(_: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/metrics/")  # what a server mounting its exporter at /metrics/ does

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=_page())

    app.router.add_get("/metrics", moved)
    app.router.add_get("/metrics/", page)
    async with serve_app(app, handle_signals=False) as base:
        result = await _collect(_collector(base + "/metrics"))
    (row,) = result.rows
    assert isinstance(row, EngineSample) and row.up and row.values["prompt_tokens_total"] == 100


def test_the_page_limits_are_settings() -> None:
    settings = EngineSettings(urls=("http://a/metrics",), max_page_bytes=4096, max_series=100, max_models=3)
    (collector,) = build_engine_collectors(settings, "h")
    assert (collector._max_page_bytes, collector._max_series, collector._max_models) == (4096, 100, 3)
    defaults = EngineSettings()
    assert (defaults.max_page_bytes, defaults.max_series, defaults.max_models) == (8 * 1024 * 1024, 50_000, 256)
