"""The proxy against exchanges captured from the real vLLM 0.32 (CPU build) by `make e2e`
(tests/fixtures/vllm/vllm-0.32-*): a replay upstream answers with the captured bytes, so each
bug the real server and the official SDK showed stays fixed without a real server.

Captured: chat/completions streams with and without include_usage, a non-streamed chat, vLLM's
400 for an over-long prompt and its 404 for an unknown model. The Responses API exchanges are
captured too when this vLLM serves them (see test_responses_api_*)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.capture.catalog import PROXY_METRICS
from agent.capture.usage_chunk import merge_usage_chunk_fields
from agent.samples import RequestRecord
from tests.capture.capture_stub import ProxyFactory, settle
from tests.support.net import serve

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vllm"
CHAT = "/v1/chat/completions"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"vllm-0.32-{name}").read_bytes()


def events(raw: bytes) -> list[bytes]:
    return [part + b"\n\n" for part in raw.split(b"\n\n") if part]


def chunks(raw: bytes) -> list[Any]:
    """The stream's payloads, parsed, without the members that differ between two answers."""
    out: list[Any] = []
    for event in events(raw):
        payload = event.removeprefix(b"data: ").strip()
        out.append(payload.decode() if payload == b"[DONE]" else
                   {k: v for k, v in json.loads(payload).items() if k not in ("id", "created")})
    return out


REQUEST = json.loads(fixture("chat-stream.request.json"))
MODEL = REQUEST["model"]


class Replay:
    """Answers as the captured vLLM did: the stream with or without usage, as the request asks."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.linger_s = 0.0
        self.served = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.bodies.append(body)
        parsed = json.loads(body) if body else {}
        mode = request.headers.get("X-Replay", "")
        if mode in ("error-too-long-stream", "error-unknown-model-stream"):
            status = 400 if mode == "error-too-long-stream" else 404
            return web.Response(body=fixture(f"{mode}.json"), status=status, content_type="application/json")
        if request.path == CHAT and not parsed.get("stream"):
            return web.Response(body=fixture("chat.json"), content_type="application/json")
        usage = bool((parsed.get("stream_options") or {}).get("include_usage"))
        raw = fixture("chat-stream-usage.sse" if usage else "chat-stream.sse")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        for i, event in enumerate(events(raw)):
            if i == 2 and mode == "pause-midstream":
                await asyncio.sleep(0.5)
            await response.write(event)
        self.served.set()
        if self.linger_s:
            await asyncio.sleep(self.linger_s)  # the last chunk of the HTTP response comes later
        await response.write_eof()
        return response


@pytest.fixture
async def replay() -> AsyncIterator[tuple[Replay, str]]:
    upstream = Replay()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream.handle)
    async with serve(app) as base:
        yield upstream, base


def _records(sink: object) -> list[RequestRecord]:
    return [r for r in sink.rows if isinstance(r, RequestRecord)]  # type: ignore[attr-defined]


async def _read_until_done_then_close(url: str, body: dict[str, Any]) -> bytes:
    """What the sync openai SDK does: read events up to `data: [DONE]`, then close the connection
    at once, without waiting for the end of the HTTP response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    raw = json.dumps(body).encode()
    writer.write(b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(raw)).encode() + b"\r\n\r\n" + raw)
    got = b""
    while b"data: [DONE]\n\n" not in got:
        data = await reader.read(65536)
        assert data, "the stream ended before [DONE]"
        got += data
    writer.transport.abort()
    return got


async def test_a_stream_whose_done_was_delivered_is_complete_when_the_sdk_closes_at_once(
        replay: tuple[Replay, str], make_proxy: ProxyFactory) -> None:
    upstream, base = replay
    upstream.linger_s = 0.5  # the proxy is still waiting on the upstream when the client closes
    proxy = await make_proxy(base)
    await _read_until_done_then_close(proxy.url, REQUEST)
    await asyncio.sleep(0.7)
    await settle()
    record = _records(proxy.sink)[-1]
    usage = chunks(fixture("chat-stream-usage.sse"))[-2]["usage"]
    assert (record.error, record.status, record.finish_reason) == (None, 200, "length")
    assert (record.prompt_tokens, record.completion_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert proxy.value("campwatch_proxy_errors_total", reason="client_disconnected") == 0
    assert proxy.value("campwatch_proxy_client_aborts_total", model=MODEL) == 0


async def test_a_stream_cut_before_done_is_still_a_client_disconnect(
        replay: tuple[Replay, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = replay
    proxy = await make_proxy(base)
    resp = await client.post(proxy.url + CHAT, json=REQUEST, headers={"X-Replay": "pause-midstream"})
    await resp.content.readuntil(b"\n\n")
    resp.close()
    await asyncio.sleep(0.7)
    await settle()
    assert _records(proxy.sink)[-1].error == "client_disconnected"
    assert proxy.value("campwatch_proxy_client_aborts_total", model=MODEL) == 1


async def test_the_client_that_did_not_ask_for_usage_gets_vllms_own_stream_with_usage_injected(
        replay: tuple[Replay, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    upstream, base = replay
    proxy = await make_proxy(base)
    async with client.post(proxy.url + CHAT, json=REQUEST) as resp:
        got = await resp.read()
    assert b"stream_options" in upstream.bodies[-1]  # the proxy asked for usage
    direct = fixture("chat-stream.sse")
    assert chunks(got) == chunks(direct)  # system_fingerprint included, no usage chunk
    assert len(events(got)) == len(events(direct))
    await settle()
    record = _records(proxy.sink)[-1]
    usage = chunks(fixture("chat-stream-usage.sse"))[-2]["usage"]
    assert (record.prompt_tokens, record.completion_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])


async def test_the_client_that_asked_for_usage_gets_the_stream_unchanged(
        replay: tuple[Replay, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    _, base = replay
    proxy = await make_proxy(base)
    asked = {**REQUEST, "stream_options": {"include_usage": True}}
    async with client.post(proxy.url + CHAT, json=asked) as resp:
        assert await resp.read() == fixture("chat-stream-usage.sse")


@pytest.mark.parametrize("mode, status", [("error-too-long-stream", 400), ("error-unknown-model-stream", 404)])
async def test_a_streamed_request_vllm_rejects_is_sent_once_and_its_error_returned(
        replay: tuple[Replay, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession,
        mode: str, status: int) -> None:
    upstream, base = replay
    proxy = await make_proxy(base)
    async with client.post(proxy.url + CHAT, json=REQUEST, headers={"X-Replay": mode}) as resp:
        assert resp.status == status
        assert await resp.read() == fixture(f"{mode}.json")
    assert len(upstream.bodies) == 1
    # the upstream's stance on stream_options is still unknown: the next stream is injected
    async with client.post(proxy.url + CHAT, json=REQUEST) as resp:
        await resp.read()
    assert b"stream_options" in upstream.bodies[-1]
    await settle()
    rejected = _records(proxy.sink)[0]
    assert (rejected.status, rejected.stream, rejected.error) == (status, True, None)


async def test_once_the_upstream_took_stream_options_a_later_400_is_not_retried(
        replay: tuple[Replay, str], make_proxy: ProxyFactory, client: aiohttp.ClientSession) -> None:
    upstream, base = replay
    proxy = await make_proxy(base)
    async with client.post(proxy.url + CHAT, json=REQUEST) as resp:
        await resp.read()
    async with client.post(proxy.url + CHAT, json=REQUEST, headers={"X-Replay": "error-too-long-stream"}) as resp:
        assert resp.status == 400
    assert len(upstream.bodies) == 2


def test_the_proxy_side_abort_count_is_declared_beside_the_engine_abort_rate() -> None:
    spec = {s.name: s for s in PROXY_METRICS}["campwatch_proxy_client_aborts_total"]
    assert (spec.kind, spec.labels) == ("counter", ("host", "model"))
    assert "vLLM does not count" in spec.help


def _same_answer(event: bytes, like: bytes) -> bytes:
    """`event` with the id and created of `like`: two answers differ only there."""
    for pattern in (rb'"id":"[^"]*"', rb'"created":\d+'):
        found = re.search(pattern, like)
        assert found is not None
        event = re.sub(pattern, found.group(0).replace(b"\\", b"\\\\"), event)
    return event


def test_the_finish_chunk_takes_back_what_vllm_moved_into_the_usage_chunk_byte_for_byte() -> None:
    with_usage, direct = events(fixture("chat-stream-usage.sse")), events(fixture("chat-stream.sse"))
    finish, usage = with_usage[-3], with_usage[-2]
    assert b"system_fingerprint" not in finish and b"system_fingerprint" in usage  # what vLLM 0.32 does
    assert _same_answer(merge_usage_chunk_fields(finish, usage), direct[-2]) == direct[-2]


def test_a_usage_chunk_with_nothing_else_leaves_the_finish_chunk_untouched() -> None:
    finish = events(fixture("chat-stream-usage.sse"))[-3]
    bare_usage = b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[],' \
                 b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n\n'
    assert merge_usage_chunk_fields(finish, bare_usage) is finish
    assert merge_usage_chunk_fields(finish, b"data: not json\n\n") is finish


def test_a_member_the_finish_chunk_has_as_null_is_filled_in() -> None:
    finish = b'data: {"id":"a","choices":[{"index":0,"finish_reason":"stop"}],"system_fingerprint":null}\n\n'
    usage = b'data: {"id":"a","choices":[],"usage":{},"system_fingerprint":"fp-1"}\n\n'
    merged = json.loads(merge_usage_chunk_fields(finish, usage)[6:])
    assert merged == {"id": "a", "choices": [{"index": 0, "finish_reason": "stop"}], "system_fingerprint": "fp-1"}
