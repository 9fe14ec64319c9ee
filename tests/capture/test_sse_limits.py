"""The SSE splitter under hostile streams (issue 9, finding 7): linear work, bounded memory, and a
stream with an over-limit event passes through the proxy byte for byte, its record marked."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from agent.capture.sse import MAX_EVENT_BYTES, SseSplitter
from agent.config import CaptureSettings
from agent.samples import RequestRecord
from tests.capture.capture_stub import MODEL, ProxyFactory, settle, stream_events
from tests.support.net import serve

CHUNK = 64 * 1024


def _pass_through(splitter: SseSplitter, chunks: list[bytes]) -> bytes:
    """What the proxy forwards: whole events while splitting, then the held bytes and the rest as is."""
    out: list[bytes] = []
    for chunk in chunks:
        if getattr(splitter, "overflowed", False):
            out.append(chunk)
            continue
        out += splitter.feed(chunk)
        if getattr(splitter, "overflowed", False):
            out.append(splitter.rest())
    out.append(splitter.rest())
    return b"".join(out)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_an_event_without_end_is_scanned_once_not_once_per_chunk(newline: bytes) -> None:
    splitter = SseSplitter(max_event_bytes=64 << 20)
    total = 0
    chunk = b"data: " + b"x" * 1000 + newline  # line ends, never a blank line
    for _ in range(4096):
        assert splitter.feed(chunk) == []
        total += len(chunk)
    # each byte once, plus at most 3 bytes of overlap per chunk (a blank line may straddle two)
    assert total <= splitter.scanned <= total + 3 * 4096
    assert splitter.rest() == chunk * 4096


def test_splitting_work_grows_linearly_with_the_stream() -> None:
    def scanned(events: int) -> int:
        splitter = SseSplitter()
        blob = b"".join(stream_events(include_usage=True)) * events
        out = [e for i in range(0, len(blob), 1000) for e in splitter.feed(blob[i:i + 1000])]
        assert b"".join(out) == blob
        chunks = -(-len(blob) // 1000)
        assert len(blob) <= splitter.scanned <= len(blob) + 3 * chunks  # every byte once, plus the overlap
        return splitter.scanned

    small, large = scanned(100), scanned(800)
    assert 8 * small * 0.99 <= large <= 8 * small * 1.01  # work grows with the stream, not its square


def test_a_60_mib_endless_event_passes_through_byte_identical_with_bounded_memory() -> None:
    body = b"data: {\"x\": \"" + b"y" * (60 << 20)
    chunks = [body[i:i + CHUNK] for i in range(0, len(body), CHUNK)]
    splitter = SseSplitter()
    tracemalloc.start()
    try:
        out = _pass_through(splitter, chunks)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    peak -= len(out)  # the joined output is this test's, not the splitter's
    assert peak < 4 * MAX_EVENT_BYTES  # held bytes: the limit and a chunk, never the whole event
    assert out == body
    assert splitter.overflowed
    assert splitter.scanned < 2 * MAX_EVENT_BYTES  # splitting stopped at the limit


def test_events_before_an_overflow_still_come_out_whole() -> None:
    splitter = SseSplitter(max_event_bytes=4096)
    assert splitter.feed(b"data: a\n\n" + b"data: " + b"z" * 5000) == [b"data: a\n\n"]
    assert splitter.overflowed and splitter.rest() == b"data: " + b"z" * 5000
    with pytest.raises(RuntimeError, match="pass the stream through"):
        splitter.feed(b"more")


def test_the_event_limit_is_a_setting_with_a_1_mib_default() -> None:
    assert CaptureSettings().max_sse_event_bytes == MAX_EVENT_BYTES == 1 << 20
    with pytest.raises(ValueError, match="max_event_bytes"):
        SseSplitter(max_event_bytes=0)


# --- through the proxy ---------------------------------------------------------------------------

HUGE = 3 << 20


@pytest.fixture
async def huge_event_upstream() -> AsyncIterator[tuple[str, bytes]]:
    """An upstream streaming two normal events, one 3 MiB event, then the usage chunk and [DONE]."""
    events = stream_events(include_usage=True)
    big = b"data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"" + b"w" * HUGE + b"\"}}]}\n\n"
    stream = b"".join(events[:2]) + big + b"".join(events[2:])

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(0, len(stream), CHUNK):
            await response.write(stream[i:i + CHUNK])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    async with serve(app) as base:
        yield base, stream


@pytest.mark.parametrize("inject_usage", [True, False])
async def test_a_stream_with_an_over_limit_event_reaches_the_client_unchanged_and_the_record_says_so(
        inject_usage: bool, huge_event_upstream: tuple[str, bytes], make_proxy: ProxyFactory,
        client: aiohttp.ClientSession) -> None:
    base, stream = huge_event_upstream
    proxy = await make_proxy(base, capture={"inject_usage": inject_usage})
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with client.post(proxy.url + "/v1/chat/completions", json=body) as resp:
        assert resp.status == 200
        received = await resp.read()
    assert received == stream  # byte for byte, the usage chunk included: nothing was parsed after the limit
    await settle()
    (record,) = [r for r in proxy.sink.rows if isinstance(r, RequestRecord)]
    assert (record.status, record.error) == (200, "sse_event_too_large")
    assert proxy.value("campwatch_proxy_errors_total", reason="sse_event_too_large") == 1
