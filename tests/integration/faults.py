"""Helpers for the fault tests of issue 9 (shutdown, listeners, secrets): a `campwatch run` subprocess
with both output streams kept and a model server that streams without end. The private PostgreSQL
instance they freeze is tests/support/private_pg.py's (never the machine's shared one)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import aiohttp
from aiohttp import web

from tests.support.net import free_port


class Campwatch:
    """`python -m agent.cli ARGS` with stdout and stderr read as they come (a full pipe would block it)."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.args = [sys.executable, "-m", "agent.cli", *args]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPWATCH_")}
        self.env.update(env or {})
        self.proc: asyncio.subprocess.Process | None = None
        self.out = bytearray()
        self.err = bytearray()
        self._readers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(*self.args, env=self.env, stdout=subprocess.PIPE,
                                                         stderr=subprocess.PIPE)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [asyncio.create_task(self._read(self.proc.stdout, self.out)),
                         asyncio.create_task(self._read(self.proc.stderr, self.err))]

    @staticmethod
    async def _read(stream: asyncio.StreamReader, into: bytearray) -> None:
        while chunk := await stream.read(65536):
            into += chunk

    @property
    def output(self) -> str:
        return (self.out + self.err).decode(errors="replace")

    async def wait_http(self, url: str, needle: str = "", timeout: float = 30.0, **kwargs: object) -> str:
        """GET `url` until it answers 200 (with `needle` in the body); fails if the process exits."""
        deadline = time.monotonic() + timeout
        body = ""
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.returncode is not None:
                    raise AssertionError(f"campwatch exited early ({self.proc.returncode}): {self.output}")
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=3), **kwargs) as resp:  # type: ignore[arg-type]
                        body = await resp.text()
                        if resp.status == 200 and needle in body:
                            return body
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"timed out waiting for {needle!r} at {url}; last body:\n{body[:1500]}\n{self.output}")

    async def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout=timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise
        finally:
            await asyncio.gather(*self._readers, return_exceptions=True)
        return code

    async def terminate(self, timeout: float) -> tuple[int, float]:
        """SIGTERM, then (exit code, seconds until it exited); kills it past `timeout`."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = await self.wait(timeout)
        return code, time.monotonic() - started


class EndlessStream:
    """An OpenAI-style upstream whose chat completions stream one SSE chunk every `every_s`
    seconds until the client goes away; `closed` is set when that happens."""

    def __init__(self, every_s: float = 0.2) -> None:
        self.every_s = every_s
        self.started = asyncio.Event()
        self.closed = asyncio.Event()
        self.headers: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.headers.append(dict(request.headers))
        body = await request.json()
        if not body.get("stream"):
            return web.json_response({"id": "c1", "object": "chat.completion", "model": body.get("model", "m"),
                                      "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                                   "finish_reason": "stop"}],
                                      "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        self.started.set()
        chunk = {"id": "c2", "object": "chat.completion.chunk", "model": body.get("model", "m"),
                 "choices": [{"index": 0, "delta": {"content": "tok"}, "finish_reason": None}]}
        try:
            while True:
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                await asyncio.sleep(self.every_s)
        except (ConnectionError, asyncio.CancelledError):
            self.closed.set()
            raise

    async def start(self) -> str:
        app = web.Application()
        app.add_routes([web.post("/v1/chat/completions", self._chat)])
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
