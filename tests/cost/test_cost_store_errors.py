"""A database error under the cost ledger leaves it as one StoreError raised at the store boundary
(agent.store.db.store_errors): the database and the driver's reason, without the SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from agent.config import CostSettings
from agent.cost.ledger import measures_for_report, recompute_ledger
from agent.errors import StoreError
from agent.store.db import open_engine, store_errors

START = datetime(2026, 9, 1, tzinfo=UTC)
END = datetime(2026, 9, 2, tzinfo=UTC)


def test_measuring_cost_on_a_database_without_the_schema_is_one_store_error_naming_it(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # never migrated: no tables
    with pytest.raises(StoreError) as caught:
        recompute_ledger(engine, CostSettings(), START, END, "h1")
    message = str(caught.value)
    assert message.startswith(f"cost measures in sqlite:///{tmp_path / 'empty.db'}: ")
    assert "no such table" in message and "[SQL:" not in message and "\n" not in message


def test_a_report_reading_a_database_without_the_schema_gets_one_store_error(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(StoreError, match=r"^reading cost measures from sqlite:///.*empty\.db: .*no such table"):
        measures_for_report(engine, CostSettings(), START, END, "h1")


def test_the_store_boundary_turns_database_errors_only_into_store_errors(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(StoreError, match=r"^counting rows: \(sqlite3\.OperationalError\) no such table: nowhere$"), \
            store_errors("counting rows"), engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM nowhere"))
    with pytest.raises(ZeroDivisionError), store_errors("counting rows"):  # a bug stays a bug
        _ = 1 / 0
