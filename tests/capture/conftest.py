"""Fixtures for the proxy tests: the lead's simulated vLLM server, the stub upstream
(capture_stub.py), a proxy factory wired to a MemorySink and its own snapshot and registry, and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from agent.capture.proxy import ProxyServer
from agent.catalog import CATALOG
from agent.config import CaptureSettings, ProxySettings
from agent.exporters.prometheus import build_registry
from agent.exporters.snapshot import Snapshot
from agent.sim.model_server import SimServerConfig, SimulatedModelServer, start_server
from agent.store.sink import MemorySink
from tests.capture.capture_stub import ProxyFactory, RunningProxy, StubUpstream
from tests.support.net import serve


@pytest.fixture
async def stub() -> AsyncIterator[tuple[StubUpstream, str]]:
    upstream = StubUpstream()
    async with serve(upstream.app(), handler_cancellation=True) as base:
        upstream.port = int(base.rsplit(":", 1)[1])
        yield upstream, base


@pytest.fixture
async def sim() -> AsyncIterator[tuple[SimulatedModelServer, str]]:
    server = SimulatedModelServer(SimServerConfig(itl_seconds=0.002, refusal_rate=0.0, prefill_tokens_per_s=1e6))
    runner, port = await start_server(server)
    yield server, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def make_proxy() -> AsyncIterator[ProxyFactory]:
    started: list[ProxyServer] = []

    async def factory(upstream: str, *, sink: Any = None, capture: dict[str, Any] | None = None,
                      **proxy: Any) -> RunningProxy:
        settings = ProxySettings(listen="127.0.0.1:0", upstream=upstream, **proxy)
        capture_settings = CaptureSettings(caller_salt=SecretStr("test-salt"), **(capture or {}))
        the_sink = sink if sink is not None else MemorySink()
        server = ProxyServer(settings, capture_settings, "test-host", the_sink)
        snapshot = Snapshot("test-host")
        snapshot.attach("proxy", server.points)
        registry = build_registry(snapshot, CATALOG)
        port = await server.start()
        started.append(server)
        return RunningProxy(server, f"http://127.0.0.1:{port}", the_sink, registry)

    yield factory
    for server in started:
        await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
