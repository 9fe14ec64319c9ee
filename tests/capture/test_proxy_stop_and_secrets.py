"""Issue 9: the proxy's stop cuts streams in flight at the timeout it is given (finding 3), and the
upstream's credentials never reach an error body or a record (finding 9)."""

from __future__ import annotations

import asyncio

import aiohttp

from agent.samples import RequestRecord
from agent.store.sink import MemorySink
from tests.capture.capture_stub import MODEL, ProxyFactory, StubUpstream, settle
from tests.support.net import free_port

CHAT = "/v1/chat/completions"
STREAM = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
MARKER = "S3cr3tMarker"


async def test_stop_cuts_an_open_stream_at_its_timeout_and_records_it_as_proxy_stopping(
        make_proxy: ProxyFactory, client: aiohttp.ClientSession, stub: tuple[StubUpstream, str]) -> None:
    upstream, url = stub
    proxy = await make_proxy(url)
    resp = await client.post(proxy.url + CHAT, json=STREAM, headers={"X-Stub-Mode": "gated"})
    assert (await resp.content.readline()).startswith(b"data:")
    await proxy.server.stop(timeout_s=0.2)  # the gate never opens: only the cut can end the stream
    try:
        while await asyncio.wait_for(resp.content.readany(), 5):
            pass
    except aiohttp.ClientError:
        pass
    await asyncio.wait_for(upstream.aborted.wait(), 5)  # the upstream connection was closed as well
    await settle()
    records = [r for r in proxy.sink.rows if isinstance(r, RequestRecord)]
    assert [r.error for r in records] == ["proxy_stopping"]


async def test_upstream_credentials_never_reach_the_error_body_or_the_record(
        make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    dead = free_port()
    proxy = await make_proxy(f"http://proxy:{MARKER}@127.0.0.1:{dead}")
    async with client.post(proxy.url + CHAT, json=STREAM) as resp:
        assert resp.status == 502
        body = await resp.text()
        message = (await resp.json())["error"]["message"]
    assert MARKER not in body
    assert f"http://proxy:***@127.0.0.1:{dead}" in message
    await settle()
    sink = proxy.sink
    assert isinstance(sink, MemorySink)
    assert [r.upstream for r in sink.rows if isinstance(r, RequestRecord)] == [f"http://proxy:***@127.0.0.1:{dead}"]
