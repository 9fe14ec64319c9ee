"""Helpers for the fault tests of issue 9 (shutdown, listeners, secrets): a `campwatch run` subprocess
with both output streams kept, a model server that streams without end, and a minimal private
PostgreSQL instance to freeze (never the machine's shared one).

The integrator may unify `PrivatePostgres` with tests/support/private_pg.py (from h9store)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.integration.sidecar import free_port


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


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("no initdb under /usr/lib/postgresql")
    return found[-1].parent


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on its own port, run as the `postgres` OS user, that a test may
    freeze (SIGSTOP on the postmaster and every backend) and must `destroy()`."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="campwatch-pg-"))
        self.port = free_port()
        self._bin = _pg_bin()
        self._frozen: list[int] = []

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=60)

    def start(self) -> str:
        shutil.chown(self.dir, "postgres")
        data = self.dir / "data"
        self._as_postgres(str(self._bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                          "--no-sync", "-E", "UTF8")
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c shared_buffers=16MB -c max_connections=20")
        self._as_postgres(str(self._bin / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                          str(self.dir / "log"), "-w", "-t", "30", "start")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pids(self) -> list[int]:
        pid_file = self.dir / "data" / "postmaster.pid"
        master = int(pid_file.read_text().splitlines()[0])
        children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
        return [master, *map(int, children)]

    def freeze(self) -> None:
        self._frozen = self._pids()
        for pid in self._frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._frozen = []

    def destroy(self) -> None:
        self.thaw()
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._as_postgres(str(self._bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w",
                              "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
