"""The agent's own health counters, exposed through the snapshot like any other source."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable

from agent import __version__
from agent.samples import Point, labels


class Telemetry:
    """Thread-safe counters and gauges about the agent itself (collector health, writes, drops)."""

    def __init__(self, host: str) -> None:
        self._host = host
        self._lock = threading.Lock()
        self._collector_up: dict[str, float] = {}
        self._collector_errors: dict[str, float] = defaultdict(float)
        self._collector_duration: dict[str, float] = {}
        self._written: dict[str, float] = defaultdict(float)
        self._dropped: dict[str, float] = defaultdict(float)
        self._queue_rows = 0.0
        self._accepted = 0.0
        self._sanitized: dict[str, float] = defaultdict(float)
        self._store_watch: Callable[[], tuple[bool, int, float | None]] | None = None

    def collector_ok(self, name: str, seconds: float) -> None:
        with self._lock:
            self._collector_up[name] = 1.0
            self._collector_errors.setdefault(name, 0.0)
            self._collector_duration[name] = seconds

    def collector_failed(self, name: str, seconds: float) -> None:
        with self._lock:
            self._collector_up[name] = 0.0
            self._collector_errors[name] += 1
            self._collector_duration[name] = seconds

    def written(self, table: str, rows: int) -> None:
        with self._lock:
            self._written[table] += rows

    def dropped(self, reason: str, rows: int = 1) -> None:
        with self._lock:
            self._dropped[reason] += rows

    def accepted(self, rows: int) -> None:
        with self._lock:
            self._accepted += rows

    def queue_rows(self, rows: int) -> None:
        with self._lock:
            self._queue_rows = float(rows)

    def sanitized(self, reason: str, values: int = 1) -> None:
        with self._lock:
            self._sanitized[reason] += values

    def watch_store(self, status: Callable[[], tuple[bool, int, float | None]]) -> None:
        """Where campwatch_store_up, _spool_bytes and _oldest_unwritten_seconds are read from:
        (store up, spool bytes, epoch seconds of the oldest unwritten row or None)."""
        self._store_watch = status

    def sanitized_count(self, reason: str) -> float:
        with self._lock:
            return self._sanitized.get(reason, 0.0)

    def dropped_count(self, reason: str) -> float:
        with self._lock:
            return self._dropped.get(reason, 0.0)

    def written_count(self, table: str | None = None) -> float:
        with self._lock:
            return sum(self._written.values()) if table is None else self._written.get(table, 0.0)

    def points(self) -> list[Point]:
        store = self._store_watch() if self._store_watch is not None else None
        with self._lock:
            out = [Point("campwatch_agent_info", 1.0, labels(version=__version__, host=self._host))]
            out += [Point("campwatch_collector_up", v, labels(collector=k)) for k, v in self._collector_up.items()]
            out += [Point("campwatch_collector_errors_total", v, labels(collector=k))
                    for k, v in self._collector_errors.items()]
            out += [Point("campwatch_collector_duration_seconds", v, labels(collector=k))
                    for k, v in self._collector_duration.items()]
            out += [Point("campwatch_samples_written_total", v, labels(table=k)) for k, v in self._written.items()]
            out += [Point("campwatch_dropped_total", v, labels(reason=k)) for k, v in self._dropped.items()]
            out.append(Point("campwatch_store_queue_rows", self._queue_rows))
            out.append(Point("campwatch_store_rows_accepted_total", self._accepted))
            out += [Point("campwatch_store_values_sanitized_total", v, labels(reason=k))
                    for k, v in self._sanitized.items()]
            if store is not None:
                up, spool_bytes, oldest = store
                out.append(Point("campwatch_store_up", 1.0 if up else 0.0))
                out.append(Point("campwatch_spool_bytes", float(spool_bytes)))
                out.append(Point("campwatch_store_oldest_unwritten_seconds",
                                 0.0 if oldest is None else max(time.time() - oldest, 0.0)))
            return out
