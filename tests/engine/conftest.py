"""Fixtures for the engine collector tests: replay servers on 127.0.0.1 and a hand-driven clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from agent.sim.vllm_metrics import VllmMetrics
from tests.support.clock import FakeClock
from tests.support.pages import V1_ENGINES, V1_MODELS, GrowingPage, fixture_text

from .replay import PageSource, ReplayServer, V1Source


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def capture_page() -> GrowingPage:
    """The real DataDog vLLM capture, growing by 10 per counter and 2 observations per histogram."""
    return GrowingPage(fixture_text("vllm/datadog_vllm_metrics.txt"))


@pytest.fixture
def v1_source() -> V1Source:
    return V1Source(VllmMetrics(V1_MODELS, V1_ENGINES, lora_adapters=("sql-tuned", "support-tuned")))


@pytest.fixture
async def replay() -> AsyncIterator[Callable[[PageSource], Awaitable[ReplayServer]]]:
    """Start replay servers for a test; all are stopped at its end."""
    servers: list[ReplayServer] = []

    async def start(source: PageSource, grow_per_request: bool = True) -> ReplayServer:
        server = ReplayServer(source, grow_per_request=grow_per_request)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()
