"""The batching writer: a bounded queue that producers offer rows to without blocking, and a
thread that flushes it, one transaction per batch, each second.

- Rows are made storable when offered (agent.store.rows.encode: NUL removed, text cut to its
  column, both counted) and kept as compact value tuples, converted once.
- A batch the database refuses for its content (DataError, IntegrityError, a value the driver
  cannot send) is split in halves until only the offending rows are left; those are dropped,
  counted in campwatch_dropped_total{reason="rejected"} and logged once per table and column
  (never the value). Any other error means the store is unavailable: the batch is kept and
  retried with exponential backoff, logged on the first failure and then at most once a minute.
- Rows go in by each backend's bulk path, inside the batch's transaction: COPY ... FROM STDIN on
  PostgreSQL (psycopg 3), the driver's executemany on SQLite; other backends use SQLAlchemy's
  insert. Driver errors are wrapped as SQLAlchemy would, so refusals split the batch as above.
- While the store stays unavailable (spool_after_s, or the queue past spool_queue_fraction of its
  cap) and at shutdown, rows go to the local spool (agent.store.spool); it is replayed in order
  when the store is back. Every committed batch records (segment, first line) in spool_replays in
  the same transaction, so a batch whose commit outcome is unknown (connection lost at COMMIT, a
  shutdown while the server hangs) is never stored twice.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Connection, Engine, Float, Integer, delete, select, text
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from agent.errors import StoreUnavailable
from agent.samples import Row
from agent.store.rows import TableCodec, encode
from agent.store.schema import spool_replays
from agent.store.spool import Encoded, Spool, new_segment_id
from agent.telemetry import Telemetry

log = logging.getLogger(__name__)

REPLAY_BATCH_ROWS = 5_000
PROBE_ROWS = 100
FORGET_BATCH = 32
"""Settled batches whose spool markers are deleted together (at most this many stay in the table)."""
_MARK = spool_replays.insert()
FAILURE_LOG_EVERY_S = 60.0
STUCK_AFTER_S = 10.0
"""A write that has not returned after this long counts as the store being down (store_up 0)."""


def is_row_error(exc: BaseException) -> bool:
    """True when the database refused the rows' content (split the batch, drop the offenders);
    False when it is unavailable (connection lost, timeout, disk full, locked: retry)."""
    if isinstance(exc, DBAPIError):
        return not exc.connection_invalidated and isinstance(exc, (DataError, IntegrityError))
    if isinstance(exc, StatementError):  # a bound value could not be processed
        return True
    return isinstance(exc, (ValueError, TypeError, OverflowError))


@dataclass(slots=True)
class _Batch:
    """Consecutive lines [first_line, first_line + len(rows)) of a segment: a spool file, or one
    flush of the queue (a segment only the markers know, unless it is spooled at shutdown)."""

    segment: str
    first_line: int
    rows: list[Encoded]
    spooled: bool = False
    uncertain: bool = False
    """A transient failure may have committed it: look for its marker before writing it again."""

    def split(self) -> tuple[_Batch, _Batch]:
        mid = len(self.rows) // 2
        return (_Batch(self.segment, self.first_line, self.rows[:mid], self.spooled, self.uncertain),
                _Batch(self.segment, self.first_line + mid, self.rows[mid:], self.spooled, self.uncertain))


_SQLITE_DATETIME_FORMAT: str = SQLITE_DATETIME._storage_format


def _value_code(i: int, column_type: Any, dialect: Any, sqlite: bool) -> str | None:
    """Python source converting value v[i] as SQLAlchemy's bind processor p{i} would, inline for
    the types campwatch stores (timestamps, booleans and floats on SQLite, booleans on PostgreSQL);
    anything else (a value of an unexpected type) goes through p{i} itself, so its errors are
    SQLAlchemy's. None: the driver takes the value as it is."""
    impl = column_type.dialect_impl(dialect)
    if not sqlite:
        if type(impl) is Boolean and dialect.supports_native_boolean:
            # COPY sends a bool as PostgreSQL's boolean text; SQLAlchemy's processor only checks the
            # type, and PostgreSQL itself refuses anything else (the row is then set apart as refused)
            return None
        return f"p{i}(v[{i}])"
    if isinstance(impl, SQLITE_DATETIME) and impl._storage_format == _SQLITE_DATETIME_FORMAT:
        # the default storage format is isoformat's, without the UTC offset (SQLAlchemy ignores tzinfo)
        return f"(v[{i}].isoformat(' ', 'microseconds')[:26] if v[{i}].__class__ is datetime else p{i}(v[{i}]))"
    if type(impl) is Boolean:
        return f"(1 if v[{i}] is True else 0 if v[{i}] is False else p{i}(v[{i}]))"
    if type(impl) is Float and not impl.asdecimal:
        # sqlite3 binds int and float as they are; a REAL column stores both as REAL
        # None (a field the device lacks) is bound as NULL, as the processor would
        return f"(v[{i}] if v[{i}].__class__ is float or v[{i}] is None else p{i}(v[{i}]))"
    return f"p{i}(v[{i}])"


RowConverter = Callable[[tuple[Any, ...]], tuple[Any, ...]]


def _row_converter(codec: TableCodec, dialect: Any, sqlite: bool) -> RowConverter | None:
    """One compiled function per table turning a stored-value tuple into the driver's parameters
    (a function call per row instead of one per value); None when no column needs converting."""
    names: dict[str, Any] = {"datetime": datetime}
    parts = []
    for i, name in enumerate(codec.columns):
        column_type = codec.table.c[name].type
        processor = column_type._cached_bind_processor(dialect)
        code = None if processor is None else _value_code(i, column_type, dialect, sqlite)
        if code is None:
            parts.append(f"v[{i}]")
            continue
        names[f"p{i}"] = processor
        parts.append(code)
    if len(names) == 1:
        return None
    source = f"def convert(v):\n    return ({', '.join(parts)},)\n"
    exec(compile(source, f"<campwatch bulk row {codec.table.name}>", "exec"), names)
    return names["convert"]  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class _Bulk:
    """One table's bulk statement for one backend, with the column types' bind processors (the
    conversions SQLAlchemy's own insert applies: timestamps to text on SQLite, JSON, ...)."""

    statement: str
    copy: bool
    convert: RowConverter | None

    @classmethod
    def of(cls, codec: TableCodec, conn: Connection) -> _Bulk | None:
        dialect = conn.dialect
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            copy = True
        elif dialect.name == "sqlite" and dialect.paramstyle == "qmark":
            copy = False
        else:
            return None  # SQLAlchemy's insert
        quote = dialect.identifier_preparer
        table = quote.format_table(codec.table)
        columns = ", ".join(quote.quote(name) for name in codec.columns)
        convert = _row_converter(codec, dialect, sqlite=not copy)
        if copy:
            return cls(f"COPY {table} ({columns}) FROM STDIN", True, convert)
        marks = ", ".join("?" for _ in codec.columns)
        return cls(f"INSERT INTO {table} ({columns}) VALUES ({marks})", False, convert)

    def rows(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        convert = self.convert
        return rows if convert is None else [convert(values) for values in rows]

    def execute(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Write `rows` on the connection's DBAPI connection (its transaction); driver errors come
        out as SQLAlchemy's DBAPIError subclasses, a lost connection invalidated."""
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            params = self.rows(rows)
            if self.copy:
                with cursor.copy(self.statement) as copy:
                    for values in params:
                        copy.write_row(values)
            else:
                cursor.executemany(self.statement, params)
        except conn.dialect.loaded_dbapi.Error as exc:
            invalidated = conn.dialect.is_disconnect(exc, raw, cursor)
            if invalidated:
                conn.invalidate(exc)
            raise DBAPIError.instance(self.statement, None, exc, conn.dialect.loaded_dbapi.Error,
                                      connection_invalidated=invalidated,
                                      dialect=conn.dialect) from exc
        finally:
            with contextlib.suppress(Exception):
                cursor.close()


def bulk_insert(conn: Connection, codec: TableCodec, rows: list[tuple[Any, ...]]) -> None:
    """Insert value tuples (in the codec's column order) inside the connection's transaction by the
    backend's bulk path (COPY on PostgreSQL, the driver's executemany on SQLite), else SQLAlchemy's
    insert: for tools that write a history directly (agent.store.rows.insert_rows)."""
    if not rows:
        return
    bulk = _Bulk.of(codec, conn)
    if bulk is None:
        conn.execute(codec.table.insert(), [dict(zip(codec.columns, values, strict=True)) for values in rows])
    else:
        bulk.execute(conn, rows)


def _describe(exc: BaseException) -> str:
    """Error class and first line, without parameters (which hold values)."""
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).splitlines()[0] if str(orig) else ""
    return f"{type(orig).__name__}: {first}"[:300]


def _suspect_column(codec: TableCodec, values: tuple[Any, ...]) -> str:
    """The column most likely refused (for the log line; the value is never logged)."""
    table = codec.table
    for name, value in zip(codec.columns, values, strict=True):
        col = table.c[name]
        if value is None and not col.nullable:
            return name
        if isinstance(value, str):
            length = getattr(col.type, "length", None)
            if "\x00" in value or (length is not None and len(value) > length):
                return name
        if isinstance(value, int) and not isinstance(value, bool):
            bits = 63 if isinstance(col.type, BigInteger) else 31 if isinstance(col.type, Integer) else 0
            if bits and not -(1 << bits) <= value < (1 << bits):
                return name
        if isinstance(value, float) and not math.isfinite(value):
            return name
    return "unknown"


def _ts_of(codec: TableCodec, values: tuple[Any, ...]) -> float | None:
    try:
        ts = values[codec.columns.index("ts")]
    except ValueError:
        return None
    return ts.timestamp() if isinstance(ts, datetime) else None


@dataclass(frozen=True, slots=True)
class StoreStatus:
    up: bool
    spool_bytes: int
    oldest_unwritten_ts: float | None

    def as_tuple(self) -> tuple[bool, int, float | None]:
        return self.up, self.spool_bytes, self.oldest_unwritten_ts


class StoreWriter:
    """Implements agent.sinks.RowSink. See the module docstring for what happens to rows on each failure."""

    def __init__(self, engine: Engine, telemetry: Telemetry, *, flush_interval_s: float = 1.0,
                 queue_max_rows: int = 100_000, spool: Spool | None = None, spool_after_s: float = 30.0,
                 spool_queue_fraction: float = 0.5, backoff_max_s: float = 30.0,
                 unhealthy_after_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self._telemetry = telemetry
        self._interval = flush_interval_s
        self._max = queue_max_rows
        self._spool = spool
        self._spool_after = spool_after_s
        self._spool_rows = max(int(queue_max_rows * spool_queue_fraction), 1)
        self._backoff_max = backoff_max_s
        self._unhealthy_after = unhealthy_after_s
        self._clock = clock
        self._queue: deque[Encoded] = deque()
        self._retry: list[_Batch] = []
        self._inflight: list[_Batch] = []
        self._forget: list[str] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._failing_since: float | None = None
        self._inflight_since: float | None = None
        self._failures = 0
        self._next_attempt = 0.0
        self._logged_failure_at: float | None = None
        self._failures_since_log = 0
        self._rejected_logged: set[tuple[str, str]] = set()
        self._bulk: dict[TableCodec, _Bulk | None] = {}
        self._conn: Connection | None = None
        """Kept between flushes (used under _flush_lock): no pool checkout and liveness ping per flush."""
        self.accepted = 0
        self.spooled = 0
        """Rows taken by offer() and rows written to the spool, since this writer started."""
        self.last_error: str | None = None
        telemetry.watch_store(lambda: self.status().as_tuple())

    # --- producers ------------------------------------------------------------------------------

    def offer(self, rows: Sequence[Row], *, drop_reason: str = "queue_full") -> int:
        with self._lock:
            room = max(self._max - len(self._queue) - self._retry_rows(), 0)
        accepted = rows if len(rows) <= room else rows[:room]
        encoded: list[Encoded] = []
        reasons: dict[str, int] = {}
        for item in accepted:
            codec, values, changed = encode(item)
            encoded.append((codec, values))
            for reason in changed:
                reasons[reason] = reasons.get(reason, 0) + 1
        with self._lock:
            self._queue.extend(encoded)
            self.accepted += len(encoded)
            queued = len(self._queue) + self._retry_rows()
        self._telemetry.accepted(len(encoded))
        for reason, count in reasons.items():
            self._telemetry.sanitized(reason, count)
        if len(accepted) < len(rows):
            self._telemetry.dropped(drop_reason, len(rows) - len(accepted))
        self._telemetry.queue_rows(queued)
        return len(accepted)

    def _retry_rows(self) -> int:
        return sum(len(b.rows) for b in self._retry)

    def pending(self) -> int:
        """Rows in memory not yet written (the spool not included)."""
        with self._lock:
            return len(self._queue) + self._retry_rows()

    # --- health ---------------------------------------------------------------------------------

    def status(self) -> StoreStatus:
        now = self._clock()
        stuck = self._inflight_since is not None and now - self._inflight_since > STUCK_AFTER_S
        oldest: list[float] = []
        with self._lock:
            firsts = [self._queue[0]] if self._queue else []
            firsts += [b.rows[0] for b in (*self._retry, *self._inflight) if b.rows]
        for codec, values in firsts:
            ts = _ts_of(codec, values)
            if ts is not None:
                oldest.append(ts)
        spool_bytes = 0
        if self._spool is not None:
            spool_bytes = self._spool.bytes()
            ts = self._spool.oldest_ts()
            if ts is not None:
                oldest.append(ts)
        return StoreStatus(self._failing_since is None and not stuck, spool_bytes, min(oldest, default=None))

    def health(self) -> tuple[bool, str]:
        """(False, why) once the store has been unwritable longer than unhealthy_after_s."""
        now = self._clock()
        since = self._failing_since if self._failing_since is not None else self._inflight_since
        if since is not None and now - since > self._unhealthy_after:
            why = self.last_error if self._failing_since is not None else "a write has not returned"
            return False, f"store unwritable for {now - since:.0f} s ({why}); rows are kept in the spool"
        return True, "ok"

    # --- writing --------------------------------------------------------------------------------

    def flush(self) -> int:
        """Replay the spool, then write everything queued. Returns rows written."""
        with self._flush_lock:
            return self._flush_locked()

    def _flush_locked(self) -> int:
        written = 0
        self._inflight_since = self._clock()
        try:
            if self._spool is not None and self._spool.segments():
                written += self._replay_spool()
            with self._lock:
                batches = self._retry
                self._retry = []
                if self._queue:
                    batches.append(_Batch(new_segment_id(), 0, list(self._queue)))
                    self._queue.clear()
            if self._failing_since is not None:
                if not batches and not written:
                    self._probe()
                elif batches and len(batches[0].rows) > PROBE_ROWS:
                    # while the store fails, try a few rows first: a refused attempt stays cheap
                    first = batches[0]
                    batches[0:1] = [_Batch(first.segment, first.first_line, first.rows[:PROBE_ROWS],
                                           uncertain=first.uncertain),
                                    _Batch(first.segment, first.first_line + PROBE_ROWS, first.rows[PROBE_ROWS:],
                                           uncertain=first.uncertain)]
            self._inflight = batches
            while self._inflight and not self._closed:
                batch = self._inflight[0]
                written += self._write(batch)
                if self._closed:
                    break
                self._inflight.pop(0)
                self._forget.append(batch.segment)
        except StoreUnavailable as exc:
            with self._lock:
                self._retry = [b for b in exc.remaining if not b.spooled] + self._inflight[1:] + self._retry
            self._inflight = []
            self._inflight_since = None
            self._failed(exc.cause)
            self._spill_if_due()
            self._publish()
            return written
        self._inflight_since = None
        self._recovered()
        self._publish()
        return written

    def _probe(self) -> None:
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            raise StoreUnavailable(exc, []) from None

    def _write(self, batch: _Batch) -> int:
        """Commit the batch, splitting it around rows the database refuses. Raises StoreUnavailable
        with the batches not yet committed when the store fails."""
        work = [batch]
        written = 0
        while work:
            if self._closed:
                return written
            part = work[0]
            try:
                written += self._commit(part)
            except Exception as exc:
                if not is_row_error(exc):
                    part.uncertain = True
                    raise StoreUnavailable(exc, work) from None
                # the refusal may be this batch's marker, committed meanwhile by a writer that was
                # stuck at shutdown: the parts look for markers before writing
                part.uncertain = True
                if len(part.rows) > 1:
                    work[0:1] = list(part.split())
                    continue
                self._reject(part, exc)
            work.pop(0)
        return written

    def _commit(self, batch: _Batch) -> int:
        """Commit the batch on the writer's kept connection; one found dead (the server restarted,
        an idle connection cut) is replaced at once, once: the marker check makes the retry safe."""
        held = self._conn is not None
        try:
            return self._commit_on(self._connection(), batch)
        except DBAPIError as exc:
            if is_row_error(exc):
                raise  # the rows were refused; the connection is fine (its transaction rolled back)
            self._drop_connection()
            if not (held and exc.connection_invalidated):
                raise
        batch.uncertain = True
        return self._commit_on(self._connection(), batch)

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()  # the pool's checkout pings it on PostgreSQL
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _commit_on(self, conn: Connection, batch: _Batch) -> int:
        now = datetime.now(UTC)
        with conn.begin():
            if batch.uncertain and self._committed(conn, batch):
                return 0
            # by identity: hashing the (frozen dataclass) codec for every row cost more than the insert
            by_id: dict[int, tuple[TableCodec, list[tuple[Any, ...]]]] = {}
            for codec, values in batch.rows:
                group = by_id.get(id(codec))
                if group is None:
                    group = by_id[id(codec)] = (codec, [])
                group[1].append(values)
            grouped = list(by_id.values())
            for codec, rows in grouped:
                self._insert(conn, codec, rows)
            # markers of settled batches go, but never those of a segment still partly pending (its
            # markers say which of its lines are in); before this batch's own marker is written
            pending = {b.segment for b in (*self._retry, *self._inflight)}
            forget = [segment for segment in self._forget if segment not in pending]
            # one DELETE for FORGET_BATCH settled batches, not one round trip per flush
            forgotten = len(forget) >= FORGET_BATCH
            if forgotten:
                conn.execute(delete(spool_replays).where(spool_replays.c.segment.in_(forget)))
            conn.execute(_MARK, {"segment": batch.segment, "first_line": batch.first_line,
                                 "rows": len(batch.rows), "committed_at": now})
        if forgotten:
            self._forget = [segment for segment in self._forget if segment in pending]
        for codec, rows in grouped:
            self._telemetry.written(codec.table.name, len(rows))
        return len(batch.rows)

    def _insert(self, conn: Connection, codec: TableCodec, rows: list[tuple[Any, ...]]) -> None:
        if codec not in self._bulk:
            self._bulk[codec] = _Bulk.of(codec, conn)
        bulk = self._bulk[codec]  # once per table and batch
        if bulk is None:
            conn.execute(codec.table.insert(), [dict(zip(codec.columns, values, strict=True)) for values in rows])
        else:
            bulk.execute(conn, rows)

    def _committed(self, conn: Connection, batch: _Batch) -> bool:
        end = batch.first_line + len(batch.rows)
        for first, count in conn.execute(select(spool_replays.c.first_line, spool_replays.c.rows)
                                         .where(spool_replays.c.segment == batch.segment)):
            if first <= batch.first_line and end <= first + count:
                return True
        return False

    def _reject(self, batch: _Batch, exc: BaseException) -> None:
        codec, values = batch.rows[0]
        column = _suspect_column(codec, values)
        self._telemetry.dropped("rejected", 1)
        key = (codec.table.name, column)
        if key not in self._rejected_logged:
            self._rejected_logged.add(key)
            orig = getattr(exc, "orig", None) or exc
            log.error("the store refused a %s row (column %s, %s): dropped, counted in "
                      "campwatch_dropped_total{reason=\"rejected\"}; further ones for this column are "
                      "only counted", codec.table.name, column, type(orig).__name__)
        if batch.spooled:  # so a crash before the segment is removed does not count it again
            with contextlib.suppress(Exception), self._engine.begin() as conn:
                conn.execute(spool_replays.insert().values(
                    segment=batch.segment, first_line=batch.first_line, rows=1, committed_at=datetime.now(UTC)))

    def _replay_spool(self) -> int:
        assert self._spool is not None
        self._spool.seal()
        written = 0
        for segment in self._spool.segments():
            items, torn = self._spool.read(segment)
            try:
                with self._engine.connect() as conn:
                    marks = conn.execute(select(spool_replays.c.first_line, spool_replays.c.rows)
                                         .where(spool_replays.c.segment == segment)).all()
            except Exception as exc:
                raise StoreUnavailable(exc, []) from None
            done = [False] * len(items)
            for first, count in marks:
                for i in range(max(first, 0), min(first + count, len(items))):
                    done[i] = True
            runs: list[_Batch] = []
            for i, item in enumerate(items):
                if done[i] or item is None:
                    continue
                last = runs[-1] if runs else None
                if last is not None and last.first_line + len(last.rows) == i and \
                        len(last.rows) < REPLAY_BATCH_ROWS:
                    last.rows.append(item)
                else:
                    runs.append(_Batch(segment, i, [item], spooled=True))
            for run in runs:
                written += self._write(run)
            if self._closed:
                return written
            self._spool.remove(segment)
            if torn:
                self._telemetry.dropped("spool_corrupt", torn)
            self._forget.append(segment)
        return written

    # --- failure bookkeeping --------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> None:
        now = self._clock()
        self._failures += 1
        if self._failing_since is None:
            self._failing_since = now
        self._next_attempt = now + min(self._backoff_max, self._interval * 2 ** min(self._failures - 1, 30))
        self.last_error = _describe(exc)
        self._failures_since_log += 1
        if self._logged_failure_at is None:
            self._logged_failure_at = now
            self._failures_since_log = 0
            log.error("store write failed (rows kept; retried with backoff, spooled if it lasts): %s",
                      self.last_error)
        elif now - self._logged_failure_at >= FAILURE_LOG_EVERY_S:
            log.error("store still unwritable after %.0f s: %d more failed attempts; %d rows in memory; "
                      "last error: %s", now - self._failing_since, self._failures_since_log,
                      self.pending(), self.last_error)
            self._logged_failure_at = now
            self._failures_since_log = 0

    def _recovered(self) -> None:
        if self._failing_since is not None:
            log.warning("store writable again after %.0f s (%d failed attempts)",
                        self._clock() - self._failing_since, self._failures)
        self._failing_since = None
        self._failures = 0
        self._next_attempt = 0.0
        self._logged_failure_at = None
        self.last_error = None

    def _spill_if_due(self, force: bool = False) -> None:
        """Move what is in memory to the spool when the outage has lasted or the queue is filling."""
        if self._spool is None:
            return
        if not force:
            if self._failing_since is None:
                return
            lasted = self._clock() - self._failing_since >= self._spool_after
            if not lasted and self.pending() < self._spool_rows:
                return
        with self._lock:
            retry, self._retry = self._retry, []
            queued = list(self._queue)
            self._queue.clear()
        try:
            for batch in retry:
                padding: list[Encoded | None] = [None] * batch.first_line
                self._spool.append([*padding, *batch.rows], segment=batch.segment)
                self.spooled += len(batch.rows)
            retry = []
            if queued:
                self._spool.append(queued)
                self.spooled += len(queued)
                queued = []
        except OSError as exc:
            log.error("cannot write the spool in %s (%s); rows stay in memory", self._spool.directory,
                      exc.strerror)
            with self._lock:
                self._retry = retry + self._retry
                self._queue.extendleft(reversed(queued))

    def _publish(self) -> None:
        self._telemetry.queue_rows(self.pending())

    # --- thread ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="campwatch-store-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if self._clock() < self._next_attempt:
                    with self._flush_lock:
                        self._spill_if_due()
                    self._publish()
                    continue
                self.flush()
            except Exception:  # a bug in one flush must not end the writer
                log.exception("store flush crashed")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread after a last flush, returning within timeout_s whatever the database
        does: what is not written by then goes to the spool (without a spool it is dropped and
        counted as store_error)."""
        deadline = self._clock() + max(timeout_s, 0.0)
        reserve = min(1.0, max(timeout_s, 0.0) * 0.2)  # kept for writing the spool
        started = self._clock()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(deadline - reserve - self._clock(), 0.0))
        done = False
        if self._thread is None or not self._thread.is_alive():
            final = threading.Thread(target=self._final_flush, name="campwatch-store-final", daemon=True)
            final.start()
            final.join(timeout=max(deadline - reserve - self._clock(), 0.0))
            done = not final.is_alive()
        if not done:
            self._abandon()
        log.info("store writer stopped in %.1f s: accepted=%d written=%d spooled=%d (rows since start)",
                 self._clock() - started, self.accepted, int(self._telemetry.written_count()), self.spooled)

    def _final_flush(self) -> None:
        with self._flush_lock:
            if self._closed:
                return
            if self._failing_since is None or self._spool is None:
                try:
                    self._flush_locked()
                except Exception:
                    log.exception("last store flush crashed")
            self._spill_if_due(force=True)
            self._drop_unwritten()
            self._drop_connection()

    def _abandon(self) -> None:
        """The writer is stuck in a database call: spool what it holds without its lock. A batch it
        is committing right now may still commit; its marker makes the replay skip it."""
        self._closed = True
        with self._lock:
            batches = [*self._inflight, *self._retry]
            self._retry = []
            self._inflight = []
            queued = list(self._queue)
            self._queue.clear()
        rows = sum(len(b.rows) for b in batches) + len(queued)
        if self._spool is None:
            self._telemetry.dropped("store_error", rows)
            return
        try:
            for batch in batches:
                if not batch.spooled:
                    padding: list[Encoded | None] = [None] * batch.first_line
                    self._spool.append([*padding, *batch.rows], segment=batch.segment)
                    self.spooled += len(batch.rows)
            if queued:
                self._spool.append(queued)
                self.spooled += len(queued)
        except OSError as exc:
            log.error("cannot write the spool in %s at shutdown (%s): %d rows lost", self._spool.directory,
                      exc.strerror, rows)
            self._telemetry.dropped("store_error", rows)
            return
        log.warning("store did not answer before the shutdown deadline: %d rows spooled for the next start",
                    rows)

    def _drop_unwritten(self) -> None:
        with self._lock:
            rows = len(self._queue) + self._retry_rows()
            self._queue.clear()
            self._retry = []
        if rows:
            self._telemetry.dropped("store_error", rows)
            log.error("store unwritable at shutdown and no spool: %d rows dropped", rows)
