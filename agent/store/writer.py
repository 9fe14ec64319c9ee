"""The batching writer: a bounded queue that producers offer rows to without blocking, and a
thread that flushes it in one transaction per interval."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.exc import SQLAlchemyError

from agent.samples import Row
from agent.store.rows import to_row
from agent.telemetry import Telemetry

log = logging.getLogger(__name__)


class StoreWriter:
    """Implements RowSink. A failed flush keeps its rows queued for the next one (so a database
    outage loses nothing until the queue is full; then the oldest rows are dropped and counted)."""

    def __init__(self, engine: Engine, telemetry: Telemetry, *, flush_interval_s: float = 1.0,
                 queue_max_rows: int = 100_000) -> None:
        self._engine = engine
        self._telemetry = telemetry
        self._interval = flush_interval_s
        self._max = queue_max_rows
        self._queue: deque[Row] = deque()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def offer(self, rows: Sequence[Row], *, drop_reason: str = "queue_full") -> int:
        with self._lock:
            room = self._max - len(self._queue)
            accepted = rows if len(rows) <= room else rows[: max(room, 0)]
            self._queue.extend(accepted)
            queued = len(self._queue)
        if len(accepted) < len(rows):
            self._telemetry.dropped(drop_reason, len(rows) - len(accepted))
        self._telemetry.queue_rows(queued)
        return len(accepted)

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def flush(self) -> int:
        """Write everything queued in one transaction. Returns rows written (0 on failure)."""
        with self._flush_lock:
            with self._lock:
                batch = list(self._queue)
                self._queue.clear()
            if not batch:
                return 0
            grouped: dict[Table, list[dict[str, Any]]] = defaultdict(list)
            for item in batch:
                table, row = to_row(item)
                grouped[table].append(row)
            try:
                with self._engine.begin() as conn:
                    for table, rows in grouped.items():
                        conn.execute(table.insert(), rows)
            except SQLAlchemyError as exc:
                self.last_error = str(exc).splitlines()[0]
                log.error("store flush of %d rows failed (kept for retry): %s", len(batch), self.last_error)
                self._requeue(batch)
                return 0
            self.last_error = None
            for table, rows in grouped.items():
                self._telemetry.written(table.name, len(rows))
            self._telemetry.queue_rows(self.pending())
            return len(batch)

    def _requeue(self, batch: list[Row]) -> None:
        with self._lock:
            self._queue.extendleft(reversed(batch))
            overflow = len(self._queue) - self._max
            for _ in range(max(overflow, 0)):
                self._queue.popleft()
        if overflow > 0:
            self._telemetry.dropped("store_error", overflow)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="campwatch-store-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._flush_logged()
        self._flush_logged()  # the last flush, on this thread, so stop() can give up waiting for it

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception:  # a bug in one flush must not end the writer
            log.exception("store flush crashed")

    def stop(self, timeout_s: float = 10) -> None:
        """Stop the thread after a last flush; never blocks longer than `timeout_s` (a store that does
        not answer keeps the rest queued, and the daemon thread is abandoned)."""
        self._stop.set()
        if self._thread is None:
            self.flush()
            return
        self._thread.join(timeout=max(timeout_s, 0.0))
        if self._thread.is_alive():
            log.warning("the store did not answer within %.1fs at shutdown; %d queued rows (and any batch "
                        "being written) were not written", timeout_s, self.pending())
