"""The in-memory latest-values snapshot: the one place exporters read from."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator

from agent.samples import Point, with_label

HOST_LABEL = "host"
"""The label every exported series carries: the snapshot adds it to points that lack it."""


class Snapshot:
    """Latest exported points per source. `replace` swaps a source's points atomically, so a source
    that fails stops showing stale values; `attach` registers a source read at export time (running
    counters such as the proxy's and the agent's own).

    With `host` set, every point that has no `host` label gets this one, so every series of every
    part (cost, proxy and agent telemetry included) can be told apart across hosts without each
    call site adding it."""

    def __init__(self, host: str | None = None) -> None:
        self._lock = threading.Lock()
        self._host = host
        self._by_source: dict[str, tuple[Point, ...]] = {}
        self._live: dict[str, Callable[[], Iterable[Point]]] = {}

    def replace(self, source: str, points: Iterable[Point]) -> None:
        frozen = self._labelled(points)
        with self._lock:
            self._by_source[source] = frozen

    def attach(self, source: str, read: Callable[[], Iterable[Point]]) -> None:
        """Read `source` on every export through `read` (thread-safe, cheap: it runs per scrape)."""
        with self._lock:
            self._live[source] = read

    def points(self) -> Iterator[Point]:
        with self._lock:
            groups = list(self._by_source.values())
            live = list(self._live.values())
        for group in groups:
            yield from group
        for read in live:
            yield from self._labelled(read())

    def _labelled(self, points: Iterable[Point]) -> tuple[Point, ...]:
        host = self._host
        if host is None:
            return tuple(points)
        out: list[Point] = []
        for point in points:
            labelled = with_label(point.labels, HOST_LABEL, host)
            out.append(point if labelled is point.labels else
                       Point(point.name, point.value, labelled, point.histogram))
        return tuple(out)
