"""A replay model server for tests: serves a page on GET /metrics on 127.0.0.1, advancing it one
step per request (counters and histogram buckets grow), and can misbehave on demand: restart
(counters back near zero), answer slowly, hang, return HTTP 500, or send garbage."""

from __future__ import annotations

import asyncio
from typing import Literal, Protocol

from aiohttp import web

from agent.sim.vllm_metrics import FinishedRequest, VllmMetrics

Mode = Literal["ok", "slow", "hang", "http500", "garbage", "binary", "empty", "html"]


class PageSource(Protocol):
    def advance(self, steps: int = 1) -> None: ...

    def restart(self) -> None: ...

    def render(self) -> str: ...


class ReplayServer:
    """`mode` decides the next answers; `requests` counts GETs; `url` is set once started."""

    def __init__(self, source: PageSource, *, grow_per_request: bool = True) -> None:
        self.source = source
        self.grow_per_request = grow_per_request
        self.mode: Mode = "ok"
        self.delay_s = 0.0
        self.requests = 0
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._hang = asyncio.Event()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/metrics"
        return self.url

    async def stop(self) -> None:
        self._hang.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def restart(self) -> None:
        """The model server restarted: every counter starts again from zero."""
        self.source.restart()

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if self.mode == "hang":
            await self._hang.wait()
        if self.mode == "slow" or self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.mode == "http500":
            return web.Response(status=500, text="Internal Server Error")
        if self.mode == "garbage":
            return web.Response(text="this is not { a metrics page\n\x00\x01 ]]]\n")
        if self.mode == "binary":
            return web.Response(body=b"\xff\xfe\x00garbage\x80\x81", content_type="application/octet-stream")
        if self.mode == "html":
            return web.Response(text="<html><body>502 Bad Gateway</body></html>\n", content_type="text/html")
        if self.mode == "empty":
            return web.Response(text="")
        if self.grow_per_request:
            self.source.advance()
        return web.Response(text=self.source.render(), content_type="text/plain", charset="utf-8")


class V1Source:
    """Adapts the vLLM page simulator (agent.sim.vllm_metrics) to PageSource: each step every
    (model, engine) finishes `per_step` requests like its `FinishedRequest`."""

    def __init__(self, server: VllmMetrics, per_step: int = 1) -> None:
        self.server = server
        self.per_step = per_step
        self.requests: dict[tuple[str, str], FinishedRequest] = {
            (m, e): FinishedRequest(m) for m in server.models for e in server.engines
        }

    def advance(self, steps: int = 1) -> None:
        for _ in range(steps):
            for (_model, engine), req in self.requests.items():
                self.server.record(req, engine=engine, times=self.per_step)

    def restart(self) -> None:
        self.server.restart()

    def render(self) -> str:
        return self.server.render()
