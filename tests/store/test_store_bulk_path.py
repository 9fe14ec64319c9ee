"""Rows go in by each backend's bulk path (COPY on PostgreSQL, the driver's executemany on SQLite)
and are stored exactly as SQLAlchemy's own insert stores them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, delete, event, select

from agent.samples import GpuSample
from agent.store.db import open_store
from agent.store.rows import encode
from agent.store.schema import engine_samples, gpu_samples, request_records
from agent.store.writer import StoreWriter
from agent.telemetry import Telemetry
from tests.support.rows import T0, engine_row, gpu_rows, request

TABLES = (gpu_samples, request_records, engine_samples)


def _rows() -> list[Any]:
    # an int in a float column and a None: outside the declared value type on purpose
    odd = GpuSample(ts=T0.replace(microsecond=123456), host="h1", gpu_index=1, uuid="GPU-1", model="H100",
                    up=False, values={"power_watts": 300, "utilization_ratio": None})  # type: ignore[dict-item]
    return [*gpu_rows(49), odd, request(ttft_seconds=0.125, completion_tokens=17, caller="team-a", status=429),
            request(model="other", stream=True, refusal=True), engine_row("m1"), engine_row("m2")]


def _stored(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in TABLES:
            columns = [c for c in table.columns if not (c.primary_key and c.autoincrement is True)]
            out[table.name] = sorted((tuple(r) for r in conn.execute(select(*columns))), key=repr)
    return out


def test_the_writer_stores_every_table_as_sqlalchemys_insert_does_without_per_row_insert_statements(
        db_url: str) -> None:
    engine = open_store(db_url, upgrade=True)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, *_a: statements.append(statement))
    writer = StoreWriter(engine, Telemetry("h1"))
    rows = _rows()
    writer.offer(rows)
    assert writer.flush() == len(rows)
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO")
               and any(t.name in s.split("(")[0] for t in TABLES)]
    assert inserts == []  # the bulk path, not SQLAlchemy's executemany
    by_writer = _stored(engine)
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(delete(table))
        for item in rows:  # the reference: SQLAlchemy's insert of the same storable values
            codec, values, _changed = encode(item)
            conn.execute(codec.table.insert(), [dict(zip(codec.columns, values, strict=True))])
    assert _stored(engine) == by_writer
    assert [len(by_writer[t.name]) for t in TABLES] == [50, 2, 2]
    engine.dispose()


def test_a_request_record_encodes_to_its_column_values_without_a_deep_copy_per_field(
        monkeypatch: Any) -> None:
    import dataclasses

    from agent.store import rows

    record = request(ttft_seconds=0.125, completion_tokens=17, caller="team-a", status=429, team="search")
    expected = rows.to_row(record)[1]

    def refuse(_: Any) -> Any:  # the old path: dataclasses.asdict deep-copied each value on the loop
        raise AssertionError("encode must not deep-copy the record")

    monkeypatch.setattr(dataclasses, "asdict", refuse)
    codec, values, reasons = encode(record)
    assert dict(zip(codec.columns, values, strict=True)) == {name: expected[name] for name in codec.columns}
    assert values[codec.columns.index("caller")] == "team-a"
    assert values[codec.columns.index("ttft_seconds")] == 0.125
    assert reasons == []


def test_a_non_boolean_in_a_boolean_column_is_refused_alone_and_the_rest_of_its_flush_is_stored(
        db_url: str) -> None:
    # PostgreSQL's COPY sends booleans without SQLAlchemy's type check: the database's own refusal
    # must still set apart just that row, as SQLAlchemy's check does on SQLite
    engine = open_store(db_url, upgrade=True)
    telemetry = Telemetry("h1")
    writer = StoreWriter(engine, telemetry)
    bad = GpuSample(ts=T0, host="h1", gpu_index=7, uuid="GPU-7", model="H100", up="maybe",  # type: ignore[arg-type]
                    values={"power_watts": 300.0})
    writer.offer([*gpu_rows(10), bad, *gpu_rows(5, start=10)])
    assert writer.flush() == 15
    with engine.connect() as conn:
        stored = conn.execute(select(gpu_samples.c.gpu_index, gpu_samples.c.up)).all()
    assert len(stored) == 15 and all(index != 7 and up is True for index, up in stored)
    assert telemetry.dropped_count("rejected") == 1
    engine.dispose()
