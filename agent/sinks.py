"""Where producers hand rows for storage: the one interface between the parts that make rows (the
capture proxy, and the runner on the collectors' behalf) and the store that keeps them.

Declared on the ground floor so a producer never imports the store: agent.wiring passes the concrete
sink (agent.store.writer.StoreWriter; agent.store.sink.MemorySink in tests and tools)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agent.samples import Row


class RowSink(Protocol):
    """Non-blocking by contract: the proxy and collectors must never wait on the database."""

    def offer(self, rows: Sequence[Row], *, drop_reason: str = "queue_full") -> int:
        """Queue rows for the next flush without blocking. Returns how many were accepted; the rest
        are dropped and counted in campwatch_dropped_total{reason=drop_reason}."""
        ...
