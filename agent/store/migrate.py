"""Alembic migrations, run on start and by `campwatch db upgrade`.

A migration is one transaction on both backends (DDL included), so a crash at any point leaves the
database at the revision it had before: on SQLite the migration connection runs in pysqlite's
autocommit mode and opens the transaction itself with BEGIN EXCLUSIVE (the SQLAlchemy recipe for
transactional DDL), which also keeps a second process from migrating at the same time; on
PostgreSQL a transaction-scoped advisory lock does the same. A database an older campwatch left
half-migrated (campwatch tables, no migration record) is completed and stamped when what exists is
exactly part of revision 0001, and refused with one message saying what to do otherwise."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from agent.errors import StoreError
from agent.store.db import sqlite_pragmas
from agent.store.schema import metadata

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
BASE_REVISION = "0001"
LOCK_KEY = 0x63616D70  # "camp": the advisory lock all campwatch migrators share
MIGRATION_LOCK_WAIT_S = 120.0
STEP_SLEEP_ENV = "CAMPWATCH_TEST_MIGRATION_STEP_SLEEP_S"
"""Tests only: sleep this long after each statement of a migration, so a kill lands mid-way."""


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _sleep_after_statement(*_args: Any) -> None:
    print("campwatch-test: migration step", file=sys.stderr, flush=True)
    time.sleep(float(os.environ.get(STEP_SLEEP_ENV, "0")))


@contextlib.contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction that holds the migration lock."""
    if engine.dialect.name == "sqlite":
        own = create_engine(engine.url, poolclass=NullPool,
                            connect_args={"check_same_thread": False, "isolation_level": None,
                                          "timeout": MIGRATION_LOCK_WAIT_S})
        event.listen(own, "connect", sqlite_pragmas(MIGRATION_LOCK_WAIT_S))

        @event.listens_for(own, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
    else:
        own = engine
    if os.environ.get(STEP_SLEEP_ENV):
        event.listen(own, "after_cursor_execute", _sleep_after_statement)
    try:
        with own.begin() as conn:
            if own.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(MIGRATION_LOCK_WAIT_S)}s'")
                conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
            yield conn
    finally:
        if own is not engine:
            own.dispose()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the database to `revision`; returns the revision it is at afterwards."""
    config = _config()
    url = engine.url.render_as_string(hide_password=True)
    try:
        with _migration_connection(engine) as conn:
            config.attributes["connection"] = conn
            if _repair_half_migrated(conn, url):
                command.stamp(config, BASE_REVISION)
            command.upgrade(config, revision)
    except SQLAlchemyError as exc:
        raise StoreError(f"migrating {url} failed: {str(exc).splitlines()[0]}") from None
    return current_revision(engine)


@lru_cache(maxsize=1)
def base_schema() -> MetaData:
    """The tables revision 0001 creates, reflected from a scratch in-memory SQLite."""
    scratch = create_engine("sqlite://", poolclass=NullPool)
    config = _config()
    reflected = MetaData()
    with scratch.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, BASE_REVISION)
        reflected.reflect(conn)
    scratch.dispose()
    reflected.remove(reflected.tables["alembic_version"])
    return reflected


def _repair_half_migrated(conn: Connection, url: str) -> bool:
    """True when the database had campwatch tables but no migration record and was completed to
    revision 0001 (the caller stamps it). Raises StoreError when it cannot be shown to be 0001."""
    if MigrationContext.configure(conn).get_current_revision() is not None:
        return False
    insp = inspect(conn)
    present = set(insp.get_table_names())
    ours = present & set(metadata.tables)
    if not ours:
        return False
    base = base_schema()
    problems: list[str] = []
    absent: list[str] = []
    for name in sorted(ours - set(base.tables)):
        problems.append(f"table {name} belongs to a later revision than 0001")
    sqlite = conn.dialect.name == "sqlite"
    missing_indexes = []
    for name, table in base.tables.items():
        if name not in present:
            if not sqlite:
                absent.append(f"table {name} is missing")
            continue
        columns = {c["name"]: c for c in insp.get_columns(name)}
        expected = {c.name: c for c in table.columns}
        if set(columns) != set(expected):
            diff = sorted(set(columns) ^ set(expected))
            problems.append(f"table {name} has other columns than revision 0001 ({', '.join(diff)})")
            continue
        for col_name, col in expected.items():
            got = columns[col_name]
            if bool(got["nullable"]) != bool(col.nullable) or \
                    (sqlite and str(got["type"]) != str(col.type)):
                problems.append(f"column {name}.{col_name} differs from revision 0001")
        have = {i["name"] for i in insp.get_indexes(name)}
        for index in table.indexes:
            if index.name not in have:
                if sqlite:
                    missing_indexes.append(index)
                else:
                    absent.append(f"index {index.name} is missing")
    problems += absent
    if problems:
        raise StoreError(
            f"{url} holds campwatch tables but no migration record (alembic_version), and they are not "
            f"revision 0001's schema: {'; '.join(problems[:3])}. An older campwatch was probably stopped "
            "mid-migration. Back the database up, then either start afresh (SQLite: move the file away; "
            "PostgreSQL: drop campwatch's tables) or fix the schema by hand and run `alembic stamp` "
            "with the revision it matches, then `campwatch db upgrade`.")
    for name, table in base.tables.items():
        if name not in present:
            table.create(conn)
    for index in missing_indexes:
        index.create(conn)
    log.warning("%s had campwatch tables but no migration record (left half-migrated by an older "
                "campwatch); completed revision 0001 and stamped it", url)
    return True


def require_current(engine: Engine) -> str | None:
    """For readers (reports, review, notebooks), which never migrate: the revision when the
    database is at the head, else one StoreError saying to run `campwatch db upgrade`."""
    url = engine.url.render_as_string(hide_password=True)
    try:
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read {url}: {str(exc).splitlines()[0]}") from None
    head = head_revision()
    if current != head:
        found = f"revision {current}" if current else "no campwatch schema"
        raise StoreError(f"{url} has {found}; this campwatch reads revision {head}. Run `campwatch db upgrade` "
                         "(with write access) or let the agent start once; reports never migrate.")
    return current
