"""Failures on either side: the client gets a clear OpenAI-format error or a cut connection, the
upstream is released, the record says what happened, and forwarding never depends on the store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import aiohttp
import pytest

from agent.samples import RequestRecord, Row
from agent.store.sink import MemorySink
from tests.capture.capture_stub import MODEL, ProxyFactory, StubUpstream, settle
from tests.support.net import free_port

CHAT = "/v1/chat/completions"
STREAM = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}


def _records(sink: MemorySink) -> list[RequestRecord]:
    return [r for r in sink.rows if isinstance(r, RequestRecord)]


async def test_an_unreachable_upstream_gives_502_with_an_openai_error_body(
        make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    proxy = await make_proxy(f"http://127.0.0.1:{free_port()}")
    async with client.post(proxy.url + CHAT, json=STREAM) as resp:
        assert resp.status == 502
        error = (await resp.json())["error"]
    assert error["code"] == "upstream_unavailable" and "cannot connect" in error["message"]
    await settle()
    assert _records(proxy.sink)[-1].error == "upstream_unavailable"
    assert proxy.value("campwatch_proxy_errors_total", reason="upstream_unavailable") == 1
    assert proxy.value("campwatch_proxy_requests_total", route=CHAT, model=MODEL, status="502") == 1


async def test_an_upstream_slower_than_the_timeout_gives_504(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = stub
    proxy = await make_proxy(base, timeout_s=0.2)
    async with client.post(proxy.url + CHAT, json={"model": MODEL}, headers={"X-Stub-Mode": "slow"}) as resp:
        assert resp.status == 504
        assert "proxy.timeout_s" in (await resp.json())["error"]["message"]


async def test_upstream_error_statuses_and_bodies_pass_through(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = stub
    proxy = await make_proxy(base)
    async with client.post(proxy.url + CHAT, json={"model": MODEL}, headers={"X-Stub-Mode": "error500"}) as resp:
        assert resp.status == 500
        assert (await resp.json())["message"] == "engine crashed"
    await settle()
    record = _records(proxy.sink)[-1]
    assert (record.status, record.error) == (500, None)


async def test_an_upstream_dying_mid_stream_cuts_the_client_connection_instead_of_ending_cleanly(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = stub
    proxy = await make_proxy(base)
    async with client.post(proxy.url + CHAT, json=STREAM, headers={"X-Stub-Mode": "die_midstream"}) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    await settle()
    record = _records(proxy.sink)[-1]
    assert record.error == "upstream_broken" and record.chunks == 2


async def test_an_upstream_stalling_mid_stream_times_out_and_the_client_is_cut(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = stub
    proxy = await make_proxy(base, timeout_s=0.2)
    async with client.post(proxy.url + CHAT, json=STREAM, headers={"X-Stub-Mode": "stall_midstream"}) as resp:
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    await settle()
    assert _records(proxy.sink)[-1].error == "upstream_timeout"


async def test_a_client_leaving_mid_stream_releases_the_upstream_and_is_recorded(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    upstream, base = stub
    proxy = await make_proxy(base)
    resp = await client.post(proxy.url + CHAT, json=STREAM, headers={"X-Stub-Mode": "slow_drip"})
    await resp.content.readuntil(b"\n\n")
    await resp.content.readuntil(b"\n\n")
    resp.close()  # drops the connection mid-stream
    await asyncio.wait_for(upstream.aborted.wait(), timeout=2)  # the upstream saw the disconnect
    await settle()
    record = _records(proxy.sink)[-1]
    assert record.error == "client_disconnected" and record.chunks >= 1
    assert proxy.value("campwatch_proxy_errors_total", reason="client_disconnected") == 1
    assert proxy.value("campwatch_proxy_client_aborts_total", model=MODEL) == 1
    assert proxy.value("campwatch_proxy_requests_in_flight") == 0


async def test_a_client_leaving_before_the_answer_cancels_the_upstream_request(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    upstream, base = stub
    proxy = await make_proxy(base)
    with pytest.raises(asyncio.TimeoutError):
        await client.post(proxy.url + CHAT, json={"model": MODEL}, headers={"X-Stub-Mode": "slow"},
                          timeout=aiohttp.ClientTimeout(total=0.2))
    await asyncio.wait_for(upstream.aborted.wait(), timeout=2)
    await settle()
    assert _records(proxy.sink)[-1].error == "client_disconnected"


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_over_the_limit_gets_a_clear_413_and_never_reaches_the_upstream(
        chunked: bool, stub: tuple[StubUpstream, str], make_proxy: ProxyFactory,
        client: aiohttp.ClientSession) -> None:
    upstream, base = stub
    proxy = await make_proxy(base, max_body_bytes=64 * 1024)
    big = b"{" + b" " * (256 * 1024) + b"}"

    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 16 * 1024):
            yield big[i:i + 16 * 1024]

    async with client.post(proxy.url + CHAT, data=body() if chunked else big) as resp:
        assert resp.status == 413
        error = (await resp.json())["error"]
    assert "proxy.max_body_bytes" in error["message"] and str(64 * 1024) in error["message"]
    assert upstream.seen == []
    await settle()
    assert _records(proxy.sink)[-1].error == "body_too_large"


async def test_a_large_body_under_the_limit_is_forwarded_whole(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    upstream, base = stub
    proxy = await make_proxy(base)
    big = b'{"model":"stub/model","input":"' + b"x" * (8 * 1024 * 1024) + b'"}'
    async with client.post(proxy.url + "/v1/embeddings", data=big) as resp:
        assert resp.status == 200
    assert upstream.seen[-1].body == big


class _RaisingSink:
    def offer(self, rows: Sequence[Row], *, drop_reason: str = "queue_full") -> int:
        raise RuntimeError("database is on fire")


async def test_a_failing_sink_is_counted_and_forwarding_goes_on(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = stub
    proxy = await make_proxy(base, sink=_RaisingSink())
    for _ in range(3):
        async with client.post(proxy.url + CHAT, json=STREAM) as resp:
            assert resp.status == 200 and (await resp.read()).endswith(b"[DONE]\n\n")
    await settle()
    assert proxy.value("campwatch_proxy_record_errors_total", stage="sink") == 3


async def test_a_full_sink_drops_records_under_the_proxy_reason_and_forwarding_goes_on(
        stub: tuple[StubUpstream, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = stub
    proxy = await make_proxy(base, sink=MemorySink(capacity=1))
    for _ in range(3):
        async with client.post(proxy.url + CHAT, json=STREAM) as resp:
            assert resp.status == 200
    await settle()
    assert len(proxy.sink.rows) == 1
    assert proxy.sink.dropped == {"proxy_queue_full": 2}
