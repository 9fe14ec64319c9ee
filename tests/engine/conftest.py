"""Fixtures for the engine collector tests: replay servers on 127.0.0.1 and a hand-driven clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from .pages import GrowingPage, V1Server, fixture_text
from .replay import PageSource, ReplayServer, V1Source


class FakeClock:
    """A monotonic clock the test moves: each scrape in these tests is `interval` seconds apart."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def capture_page() -> GrowingPage:
    """The real DataDog vLLM capture, growing by 10 per counter and 2 observations per histogram."""
    return GrowingPage(fixture_text("vllm/datadog_vllm_metrics.txt"))


@pytest.fixture
def v1_source() -> V1Source:
    return V1Source(V1Server(lora_adapters=("sql-tuned", "support-tuned")))


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
