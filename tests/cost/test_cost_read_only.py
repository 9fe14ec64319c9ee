"""Reports read only: `campwatch cost` and `drift --last` never migrate or write, work with
read-only credentials, and say clearly when the schema is behind (issue 15)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from agent.cli import main
from agent.store.db import open_engine, open_store
from agent.store.migrate import upgrade
from tests.cost.cost_helpers import T0, request_row, steady_host, write


def _seeded(url: str) -> None:
    engine = open_store(url, upgrade=True)
    steady_host(engine)
    engine.dispose()


def _cost(url: str, *more: str) -> object:
    return CliRunner().invoke(main, ["cost", "--db", url, "--from", "2026-03-02", "--to", "2026-03-03",
                                     "--json", *more])


def test_cost_reads_a_read_only_sqlite_file_without_a_stray_folder(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "campwatch.db"
    _seeded(f"sqlite:///{path}")
    before = path.read_bytes()
    os.chmod(path, 0o444)
    monkeypatch.chdir(tmp_path)
    result = _cost(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    data = json.loads(result.output)  # type: ignore[attr-defined]
    assert data["total"]["allocation"]["total_usd"] == "5.000000"  # 2 GPU-hours at the default $2.50
    assert not (tmp_path / "file:").exists()
    assert path.read_bytes() == before


def test_drift_last_reads_a_read_only_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "campwatch.db"
    _seeded(f"sqlite:///{path}")
    result = CliRunner().invoke(main, ["drift", "--db", f"sqlite:///file:{path}?mode=ro&uri=true", "--last"])
    assert result.exit_code == 0, result.output


def test_a_database_behind_the_schema_gets_one_message_to_run_db_upgrade(tmp_path: Path) -> None:
    # a long path: the message once wrapped at the console's width, cutting `campwatch db upgrade` in two
    path = tmp_path / ("a-long-folder-name-" * 6) / "old.db"
    path.parent.mkdir()
    engine = open_engine(f"sqlite:///{path}")
    upgrade(engine, "0001")
    engine.dispose()
    result = _cost(f"sqlite:///{path}")
    assert result.exit_code == 3  # type: ignore[attr-defined]
    out = result.output  # type: ignore[attr-defined]
    assert "has revision 0001" in out and "campwatch db upgrade" in out
    assert out.count("\n") == 1 and str(path) in out  # one line, the path whole
    assert "Traceback" not in out and "SELECT" not in out
    engine = open_engine(f"sqlite:///{path}")
    with engine.connect() as conn:  # the report did not migrate it
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
    engine.dispose()


def test_a_missing_read_only_file_and_a_bad_url_are_one_clear_error(tmp_path: Path) -> None:
    missing = _cost(f"sqlite:///file:{tmp_path / 'nope.db'}?mode=ro&uri=true")
    assert missing.exit_code == 3 and "no SQLite database at" in missing.output  # type: ignore[attr-defined]
    bad = _cost("mysql://x/y")
    assert bad.exit_code == 2 and "expected a sqlite or postgresql URL" in bad.output  # type: ignore[attr-defined]
    assert "Traceback" not in bad.output  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_cost_works_with_a_select_only_postgresql_role(pg_url: str) -> None:
    _seeded(pg_url)
    role = f"campwatch_ro_{uuid.uuid4().hex[:8]}"
    admin = open_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"))
    try:
        host_db = pg_url.split("@", 1)[-1] if "@" in pg_url else pg_url.split("://", 1)[1]
        ro_url = f"postgresql://{role}@{host_db}"
        result = _cost(ro_url)
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        assert json.loads(result.output)["total"]["allocation"]["total_usd"] == "5.000000"  # type: ignore[attr-defined]
        last = CliRunner().invoke(main, ["drift", "--db", ro_url, "--last"])
        assert last.exit_code == 0, last.output
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def test_reports_default_to_every_host_and_an_empty_answer_names_what_exists(tmp_path: Path) -> None:
    # The records were stored under host h1, not this machine's name: both reports still look there.
    path = tmp_path / "campwatch.db"
    _seeded(f"sqlite:///{path}")
    engine = open_engine(f"sqlite:///{path}")
    write(engine, "requests", [request_row(T0, 100, 10)])
    engine.dispose()
    cost = _cost(f"sqlite:///{path}")
    assert json.loads(cost.output)["source"]["hosts_found"] == ["h1"]  # type: ignore[attr-defined]
    drift = CliRunner().invoke(main, ["drift", "--db", f"sqlite:///{path}", "--last"])
    assert drift.exit_code == 0, drift.output
    assert f"read sqlite:///{path}, all hosts" in drift.output.replace("\n", "")
    assert "request_records: h1" in drift.output
