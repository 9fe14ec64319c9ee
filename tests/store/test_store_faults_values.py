"""Finding 1: one bad value must not stop storage. Values are made storable when offered (NUL
removed, over-long text cut with a marker, both counted); a row the database still refuses is
dropped alone and counted; the rest of its batch is stored. Same on SQLite and PostgreSQL."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from agent.store.db import open_store
from agent.store.rows import TRUNCATION_MARK
from agent.store.writer import StoreWriter
from agent.telemetry import Telemetry
from tests.support.rows import count, engine_row, engine_samples, gpu_rows, request, request_records


def test_nul_and_overlong_values_are_stored_cleaned_and_counted_with_every_other_row(db_url: str) -> None:
    engine = open_store(db_url, upgrade=True)
    telemetry = Telemetry("h1")
    writer = StoreWriter(engine, telemetry)
    writer.offer(gpu_rows(100))
    writer.offer([request(model="a\u0000b"), request(route="/v1/models\u0000x")])
    writer.offer([engine_row("m" * 300)])
    writer.offer(gpu_rows(100, start=100))
    assert writer.flush() == 203
    assert count(engine) == 200
    with engine.connect() as conn:
        models = sorted(conn.execute(select(request_records.c.model)).scalars())
        routes = sorted(conn.execute(select(request_records.c.route)).scalars())
        long_model = conn.execute(select(engine_samples.c.model)).scalar_one()
    assert models == ["ab", "m"]
    assert routes == ["/v1/chat/completions", "/v1/modelsx"]
    assert len(long_model) == 255 and long_model == "m" * 254 + TRUNCATION_MARK
    assert telemetry.sanitized_count("nul") == 2
    assert telemetry.sanitized_count("truncated") == 1
    assert telemetry.dropped_count("rejected") == 0


def test_a_row_the_database_refuses_is_dropped_alone_counted_and_logged_without_its_value(
        db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    engine = open_store(db_url, upgrade=True)
    telemetry = Telemetry("h1")
    writer = StoreWriter(engine, telemetry)
    writer.offer(gpu_rows(120))
    huge = 2**70 + 12345  # out of range for every integer column, on both backends
    writer.offer([request(prompt_tokens=huge), request(model="fine")])
    writer.offer(gpu_rows(80, start=120))
    writer.offer([request(prompt_tokens=huge, request_id="r2")])
    with caplog.at_level(logging.ERROR, logger="agent.store.writer"):
        assert writer.flush() == 201
    assert count(engine) == 200
    with engine.connect() as conn:
        assert list(conn.execute(select(request_records.c.model)).scalars()) == ["fine"]
    assert telemetry.dropped_count("rejected") == 2
    assert writer.pending() == 0 and writer.last_error is None
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1  # once per table and column
    assert "request_records" in refused[0] and "prompt_tokens" in refused[0]
    assert str(huge) not in caplog.text


def test_rejected_rows_do_not_hold_back_later_flushes(db_url: str) -> None:
    engine = open_store(db_url, upgrade=True)
    telemetry = Telemetry("h1")
    writer = StoreWriter(engine, telemetry)
    writer.offer([request(completion_tokens=-(2**70))])
    writer.flush()
    writer.offer(gpu_rows(10))
    assert writer.flush() == 10
    assert count(engine) == 10 and telemetry.dropped_count("rejected") == 1
