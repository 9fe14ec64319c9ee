"""A sink that keeps rows in memory: implements agent.sinks.RowSink without a database."""

from __future__ import annotations

from collections.abc import Sequence

from agent.samples import Row


class MemorySink:
    """A sink that keeps rows in a list, bounded; for tests and for tools that don't store."""

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self.rows: list[Row] = []
        self.dropped: dict[str, int] = {}

    def offer(self, rows: Sequence[Row], *, drop_reason: str = "queue_full") -> int:
        room = max(self.capacity - len(self.rows), 0)
        accepted = list(rows[:room])
        self.rows.extend(accepted)
        if len(rows) > room:
            self.dropped[drop_reason] = self.dropped.get(drop_reason, 0) + len(rows) - room
        return len(accepted)
