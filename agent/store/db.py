"""Opening a database: SQLite (WAL, synchronous=NORMAL) or PostgreSQL, same code. Every
connection has timeouts, so a frozen or overloaded server never blocks a caller without end:
PostgreSQL connect_timeout, statement_timeout and lock_timeout; SQLite busy_timeout."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from agent.errors import StoreError
from agent.urls import display_url


@contextlib.contextmanager
def store_errors(what: str) -> Iterator[None]:
    """The store boundary for code that queries the database itself (cost, drift, review): a
    database error raised in the block (any SQLAlchemyError: connection lost, timeout, missing
    table, ...) leaves it as one StoreError, `what` and then the first line of the driver's message
    (not the SQL and parameters SQLAlchemy appends). Other errors pass through unchanged."""
    try:
        yield
    except SQLAlchemyError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreError(f"{what}: {first}") from exc


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Store timeouts in seconds (StoreSettings has the same names and defaults)."""

    connect_timeout_s: float = 5.0
    statement_timeout_s: float = 30.0
    lock_timeout_s: float = 10.0
    busy_timeout_s: float = 5.0

    @classmethod
    def of(cls, settings: Any) -> Timeouts:
        return cls(settings.connect_timeout_s, settings.statement_timeout_s, settings.lock_timeout_s,
                   settings.busy_timeout_s)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, busy_ms: int = 5000) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def normalize_url(raw: str) -> URL:
    """postgresql:// without a driver means psycopg 3 (the `postgres` extra)."""
    url = make_url(raw)
    if url.drivername in {"postgresql", "postgres"}:
        url = url.set(drivername="postgresql+psycopg")
    return url


def sqlite_pragmas(busy_timeout_s: float) -> Any:
    """The connect listener that sets WAL, synchronous=NORMAL, busy_timeout and foreign keys."""
    return functools.partial(_sqlite_pragmas, busy_ms=int(busy_timeout_s * 1000))


def postgres_connect_args(timeouts: Timeouts) -> dict[str, Any]:
    return {"connect_timeout": max(1, round(timeouts.connect_timeout_s)),
            "options": f"-c statement_timeout={int(timeouts.statement_timeout_s * 1000)} "
                       f"-c lock_timeout={int(timeouts.lock_timeout_s * 1000)}"}


def open_engine(raw_url: str, timeouts: Timeouts | None = None) -> Engine:
    """An Engine for the URL; creates the SQLite file's folder. Raises StoreError."""
    timeouts = timeouts or Timeouts()
    try:
        url = normalize_url(raw_url)
    except Exception:
        raise StoreError(f"store.url: expected an SQLAlchemy URL, got {display_url(raw_url)!r}") from None
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if url.query.get("uri") in ("true", "1") and database.startswith("file:"):
            # An SQLite URI (file:PATH?mode=ro): the path is after "file:"; a read-only one creates nothing.
            read_only = url.query.get("mode") == "ro"
            if read_only and not Path(database[5:].partition("?")[0]).expanduser().is_file():
                raise StoreError(f"store.url: no SQLite database at {database[5:]} (mode=ro opens an existing "
                                 "file only)")
            engine = create_engine(url, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_read_only if read_only else _sqlite_pragmas)
            return engine
        if database and database != ":memory:":
            path = Path(database).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"store.url: cannot create the folder {path.parent} for the SQLite database "
                                 f"({exc.strerror}); expected a writable path") from None
            url = url.set(database=str(path))
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", sqlite_pragmas(timeouts.busy_timeout_s))
        return engine
    try:
        return create_engine(url, pool_pre_ping=True, pool_timeout=timeouts.connect_timeout_s,
                             connect_args=postgres_connect_args(timeouts))
    except Exception as exc:
        raise StoreError(f"cannot open {url.render_as_string(hide_password=True)}: {exc}") from None


def open_store(raw_url: str, *, upgrade: bool = False, timeouts: Timeouts | None = None) -> Engine:
    """The store for a command or a notebook, at the newest schema. By default for a reader (a
    report, the review, a notebook), which never migrates or writes: StoreError saying to run
    `campwatch db upgrade` when the schema is behind. With `upgrade`, for a command that writes
    (`db upgrade`, a drift check, seed-history): migrations are applied first. Raises StoreError.

    The running agent opens its store with open_engine and migrates in the background (wiring), so
    an unreachable database at start does not stop it."""
    from agent.store import migrate  # Alembic: only commands and notebooks load it here

    engine = open_engine(raw_url, timeouts)
    if upgrade:
        migrate.upgrade(engine)
    else:
        migrate.require_current(engine)
    return engine
