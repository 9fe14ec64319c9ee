"""Finding 2: a kill -9 during a migration must not brick the database. Migrations are one
transaction (DDL included) on SQLite and PostgreSQL, two processes never migrate at once, and a
database an older campwatch left half-migrated is completed or refused with one clear message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select

from agent.errors import StoreError
from agent.store.db import open_engine
from agent.store.migrate import STEP_SLEEP_ENV, base_schema, current_revision, head_revision, upgrade
from agent.store.schema import gpu_samples, metadata
from tests.support.rows import T0

ROOT = Path(__file__).resolve().parents[2]
MIGRATE = "import sys; from agent.store.db import open_engine; from agent.store.migrate import upgrade; " \
          "print(upgrade(open_engine(sys.argv[1])), flush=True)"


def _migrator(url: str, step_sleep_s: float) -> subprocess.Popen[str]:
    env = {**os.environ, STEP_SLEEP_ENV: str(step_sleep_s)}
    return subprocess.Popen([sys.executable, "-c", MIGRATE, url], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _assert_at_head_with_the_declared_schema(url: str) -> None:
    engine = open_engine(url)
    assert upgrade(engine) == head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []
    engine.dispose()


@pytest.mark.parametrize("steps_before_kill", [3, 20])
def test_a_kill_9_in_the_middle_of_the_first_migration_leaves_a_database_the_next_start_migrates(
        db_url: str, steps_before_kill: int) -> None:
    proc = _migrator(db_url, 0.05)
    assert proc.stderr is not None
    seen = 0
    while seen < steps_before_kill:
        line = proc.stderr.readline()
        assert line, f"the migration ended before step {steps_before_kill}"
        seen += "migration step" in line
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    engine = open_engine(db_url)
    assert current_revision(engine) is None
    # nothing of the killed migration is left behind
    assert set(inspect(engine).get_table_names()) & set(metadata.tables) == set()
    engine.dispose()
    _assert_at_head_with_the_declared_schema(db_url)


def test_two_processes_migrating_at_once_both_end_at_head(db_url: str) -> None:
    procs = [_migrator(db_url, 0.01) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-500:] for _, err in outs]
    assert [out.strip() for out, _ in outs] == [head_revision(), head_revision()]
    _assert_at_head_with_the_declared_schema(db_url)


def test_a_half_migrated_sqlite_file_of_an_older_version_is_completed_keeping_its_rows(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    base = base_schema()
    with engine.begin() as conn:  # what a kill during the old, non-transactional migration left
        for name in ("gpu_samples", "engine_samples", "request_records"):
            base.tables[name].create(conn)
        conn.execute(insert(gpu_samples).values(ts=T0, host="h1", gpu_index=0, uuid="GPU-0", model="H100",
                                                up=True, simulated=False))
        conn.exec_driver_sql("DROP INDEX ix_gpu_samples_ts")
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(select(gpu_samples.c.uuid)).scalars().all() == ["GPU-0"]
    engine.dispose()
    _assert_at_head_with_the_declared_schema(sqlite_url)


def test_a_half_migrated_postgres_database_with_the_whole_base_schema_is_stamped(pg_url: str) -> None:
    engine = open_engine(pg_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_version")
    assert upgrade(engine) == head_revision()
    engine.dispose()


def test_a_database_with_campwatch_tables_not_of_revision_0001_is_refused_with_what_to_do(db_url: str) -> None:
    engine = open_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE gpu_samples (id INTEGER PRIMARY KEY, something TEXT)")
    with pytest.raises(StoreError) as err:
        upgrade(engine)
    message = str(err.value)
    assert "no migration record" in message and "gpu_samples" in message
    assert "Back the database up" in message and "campwatch db upgrade" in message
    assert "\n" not in message
    engine.dispose()
