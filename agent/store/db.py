"""Opening a database: SQLite (WAL, synchronous=NORMAL) or PostgreSQL, same code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from agent.errors import StoreError


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
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


def open_engine(raw_url: str) -> Engine:
    """An Engine for the URL; creates the SQLite file's folder. Raises StoreError."""
    try:
        url = normalize_url(raw_url)
    except Exception as exc:
        raise StoreError(f"store.url: expected an SQLAlchemy URL, got {raw_url!r}: {exc}") from None
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
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except Exception as exc:
        raise StoreError(f"cannot open {url.render_as_string(hide_password=True)}: {exc}") from None
