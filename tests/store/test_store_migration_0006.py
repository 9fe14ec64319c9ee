"""Migration 0006 drops request_records.language (never filled) and keeps everything else stored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import inspect, select

from agent.store.db import open_engine
from agent.store.migrate import upgrade
from agent.store.schema import request_records


def test_a_request_stored_before_0006_keeps_its_values_and_the_language_column_is_gone(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'cw.db'}")
    assert upgrade(engine, "0005") == "0005"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO request_records (ts, host, request_id, model, route, method, caller, upstream, status, "
            "stream, latency_seconds, chunks, json_requested, simulated, non_ascii_ratio, language)"
            " VALUES (?, 'h', 'r1', 'm', '/v1/chat/completions', 'POST', 'c', 'u', 200, 0, 0.5, 0, 0, 0, 0.25, 'en')",
            (datetime(2026, 12, 1, tzinfo=UTC),))
    assert upgrade(engine, "0006") == "0006"
    assert "language" not in {c["name"] for c in inspect(engine).get_columns("request_records")}
    with engine.connect() as conn:
        row = conn.execute(select(request_records.c.request_id, request_records.c.non_ascii_ratio,
                                  request_records.c.latency_seconds)).one()
    assert tuple(row) == ("r1", 0.25, 0.5)
