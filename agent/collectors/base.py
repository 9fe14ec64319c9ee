"""The Collector protocol: the one abstraction every telemetry source implements."""

from __future__ import annotations

from typing import Protocol

from agent.samples import Collected


class Collector(Protocol):
    """Ticked by the runner every `interval_s`. `collect` returns rows to store and points to
    expose, or raises CollectorError (the runner reports it and keeps the other collectors going).
    It must not block the event loop: blocking calls go through asyncio.to_thread."""

    name: str
    interval_s: float

    async def collect(self) -> Collected: ...

    async def close(self) -> None: ...
