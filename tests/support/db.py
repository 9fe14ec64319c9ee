"""Throwaway databases on SQLite and on the machine's real PostgreSQL: pytest fixtures (registered
for every test by tests/conftest.py) and the plain functions behind them, for benchmarks."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from agent.store.db import open_engine
from agent.store.schema import metadata

PG_ADMIN_URL = os.environ.get("CAMPWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def sqlite_url_in(folder: Path, name: str = "campwatch.db") -> str:
    return f"sqlite:///{folder / name}"


@contextmanager
def pg_database(admin_url: str = PG_ADMIN_URL, prefix: str = "campwatch_t") -> Iterator[str]:
    """The URL of a fresh PostgreSQL database, dropped afterwards. Raises the driver's error when
    the server at `admin_url` cannot be reached (the pytest fixtures turn that into a skip)."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:
        admin.dispose()
        raise
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def tables_engine(url: str) -> Engine:
    """An engine on `url` with every campwatch table created from the schema (no migration record)."""
    engine = open_engine(url)
    metadata.create_all(engine)
    return engine


def _fresh_pg() -> Iterator[str]:
    """A fresh database for a fixture; skips when the server is unreachable (fails in CI, where the
    server is required)."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(pg_database())
        except Exception as exc:  # pragma: no cover - depends on the machine
            if os.environ.get("CI"):
                pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required in CI: {exc}")
            pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    yield from _fresh_pg()


@pytest.fixture(scope="module")
def pg_module_url() -> Iterator[str]:
    """A fresh PostgreSQL database shared by one test module (a seeded history), dropped afterwards."""
    yield from _fresh_pg()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return sqlite_url_in(tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Both backends, for tests whose behaviour must be identical on each."""
    if request.param == "sqlite":
        yield sqlite_url_in(tmp_path)
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """A fresh SQLite store with every table."""
    engine = tables_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """A throwaway PostgreSQL store with every table (skips when the server is unreachable outside CI)."""
    engine = tables_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Engine:
    """Both backends with every table, for behaviour that must be identical on each."""
    engine: Engine = request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")
    return engine
