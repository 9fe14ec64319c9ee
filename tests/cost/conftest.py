"""Fixtures for the cost engine tests: a fresh SQLite store, or a throwaway PostgreSQL database
(the project's pg_url fixture, which skips when the server is unreachable outside CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from agent.store.db import open_engine
from agent.store.schema import metadata


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_engine(f"sqlite:///{tmp_path / 'campwatch.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = open_engine(pg_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Engine:
    """Both backends, for behaviour that must be identical on each."""
    engine: Engine = request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")
    return engine
