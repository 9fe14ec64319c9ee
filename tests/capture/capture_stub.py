"""A stub upstream for what the simulated vLLM server does not do (echoing what it received,
errors, stalls, dying mid-stream, byte-exact SSE) and small helpers for the proxy tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from agent.capture.proxy import ProxyServer
from agent.store.sink import MemorySink

MODEL = "stub/model"
PROMPT = "Tell me about the secret project Bluebird-7731 please"
OUTPUT_WORDS = ("Bluebird-7731 ", "is ", "a ", "confidential ", "plan ", "contact ", "ana@example.org")
OUTPUT = "".join(OUTPUT_WORDS)


def sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def chat_chunk(content: str | None, finish: str | None = None, *, role: bool = False) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {"content": content}
    return {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


USAGE = {"prompt_tokens": 11, "completion_tokens": len(OUTPUT_WORDS), "total_tokens": 11 + len(OUTPUT_WORDS),
         "prompt_tokens_details": {"cached_tokens": 3}}


def stream_events(include_usage: bool) -> list[bytes]:
    """What vLLM sends for a streamed chat completion (usage: null on chunks when usage was asked)."""
    chunks = [chat_chunk(None, role=True)]
    chunks += [chat_chunk(w, "stop" if i == len(OUTPUT_WORDS) - 1 else None) for i, w in enumerate(OUTPUT_WORDS)]
    events = []
    for chunk in chunks:
        if include_usage:
            chunk["usage"] = None
        events.append(sse(chunk))
    if include_usage:
        events.append(sse({"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 1,
                           "model": MODEL, "choices": [], "usage": USAGE}))
    events.append(b"data: [DONE]\n\n")
    return events


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class StubUpstream:
    """An OpenAI-shaped upstream whose behaviour a test picks with the X-Stub-Mode header."""

    seen: list[Seen] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    aborted: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path_qs, list(request.headers.items()), body))
        mode = request.headers.get("X-Stub-Mode", "")
        path = request.path
        if mode == "status":
            status = web.Response(status=int(request.query.get("code", "418")), text="teapot body",
                                    headers={"X-Custom": "kept", "Keep-Alive": "timeout=5",
                                             "Connection": "X-Hop", "X-Hop": "must-not-pass"})
            status.headers.add("Set-Cookie", "a=1")
            status.headers.add("Set-Cookie", "b=2")
            return status
        if mode == "error500":
            return web.json_response({"object": "error", "message": "engine crashed", "type": "InternalError",
                                      "code": 500}, status=500)
        if mode == "slow":
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:  # the proxy dropped the connection
                self.aborted.set()
                raise
            return web.json_response({})
        if mode == "reject_stream_options":
            if b"stream_options" in body:
                # what a strict (extra="forbid") pydantic schema answers: the field is named
                return web.json_response({"detail": [{"type": "extra_forbidden", "loc": ["body", "stream_options"],
                                                      "msg": "Extra inputs are not permitted"}]}, status=422)
            mode = "stream"
        if mode == "big":  # a large body with a Content-Length, or chunked without one
            blob = bytes(range(256)) * (int(request.query["kib"]) * 4)
            if request.query.get("chunked"):
                chunked = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
                chunked.enable_chunked_encoding()
                await chunked.prepare(request)
                for i in range(0, len(blob), 100_000):
                    await chunked.write(blob[i:i + 100_000])
                await chunked.write_eof()
                return chunked
            return web.Response(body=blob, content_type="application/octet-stream")
        if mode == "gzip":  # compressed whatever the client accepts: the proxy must not touch it
            import gzip

            return web.Response(body=gzip.compress(b'{"object": "list", "data": []}'),
                                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
        if path.endswith("/embeddings"):
            return web.json_response({"object": "list", "model": MODEL,
                                      "data": [{"object": "embedding", "index": 0, "embedding": [0.1] * 64}],
                                      "usage": {"prompt_tokens": 9, "total_tokens": 9}})
        if path.endswith("/chat/completions"):
            parsed = json.loads(body) if body.startswith(b"{") else {}
            if not parsed.get("stream"):
                return web.json_response({
                    "id": "chatcmpl-stub", "object": "chat.completion", "created": 1, "model": MODEL,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": OUTPUT},
                                 "finish_reason": "stop"}], "usage": USAGE})
            include = bool((parsed.get("stream_options") or {}).get("include_usage"))
            return await self._stream(request, stream_events(include), mode)
        return web.json_response({"method": request.method, "path_qs": request.path_qs, "echo": body.decode(
            "latin-1")}, headers={"X-Custom": "kept"})

    async def _stream(self, request: web.Request, events: list[bytes], mode: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        try:
            if mode == "split":  # events cut at arbitrary byte positions, several per write
                blob = b"".join(events)
                for i in range(0, len(blob), 7):
                    await response.write(blob[i:i + 7])
            elif mode == "gated":  # the first event, then nothing until the test opens the gate
                await response.write(events[0])
                await self.gate.wait()
                for event in events[1:]:
                    await response.write(event)
            elif mode == "die_midstream":
                for event in events[:3]:
                    await response.write(event)
                await asyncio.sleep(0.05)
                assert request.transport is not None
                request.transport.abort()
                return response
            elif mode == "stall_midstream":
                for event in events[:3]:
                    await response.write(event)
                await asyncio.sleep(5)
            elif mode == "slow_drip":  # keeps going until the client goes away
                await response.write(events[0])
                for _ in range(500):
                    await asyncio.sleep(0.01)
                    await response.write(events[1])
            else:
                for event in events:
                    await response.write(event)
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            self.aborted.set()
            raise
        return response


@dataclass
class RunningProxy:
    server: ProxyServer
    url: str
    sink: MemorySink
    registry: CollectorRegistry

    def value(self, name: str, **labels: str) -> float:
        got = self.registry.get_sample_value(name, {"host": "test-host", **labels})
        return 0.0 if got is None else got


async def settle() -> None:
    """Let handlers that finished on the server side reach their record (they run in other tasks)."""
    for _ in range(5):
        await asyncio.sleep(0.01)


ProxyFactory = Callable[..., Awaitable[RunningProxy]]
