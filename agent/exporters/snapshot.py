"""The in-memory latest-values snapshot: the one place exporters read from."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from agent.samples import Point


class Snapshot:
    """Latest exported points per source. `replace` swaps a source's points atomically, so a source
    that fails stops showing stale values."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_source: dict[str, tuple[Point, ...]] = {}

    def replace(self, source: str, points: Iterable[Point]) -> None:
        frozen = tuple(points)
        with self._lock:
            self._by_source[source] = frozen

    def points(self) -> Iterator[Point]:
        with self._lock:
            groups = list(self._by_source.values())
        for group in groups:
            yield from group
