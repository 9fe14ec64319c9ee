"""Migration 0005 adds the newer engine counters without losing rows stored before it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from agent.store.db import open_engine
from agent.store.migrate import upgrade
from agent.store.schema import engine_samples


def test_rows_stored_before_0005_keep_their_values_and_read_null_for_the_new_counters(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'cw.db'}")
    assert upgrade(engine, "0001") == "0001"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO engine_samples (ts, host, server, kind, model, engine, up, simulated, prompt_tokens_total)"
            " VALUES (?, 'h', 's', 'vllm', 'm', '0', 1, 0, 123.0)", (datetime(2026, 12, 1, tzinfo=UTC),))
    assert upgrade(engine, "0005") == "0005"
    with engine.begin() as conn:
        conn.execute(insert(engine_samples).values(
            ts=datetime(2026, 12, 1, 0, 1, tzinfo=UTC), host="h", server="s", kind="vllm", model="m",
            engine="0", up=True, simulated=False, estimated_flops_total=4.5e15))
        rows = conn.execute(select(engine_samples.c.prompt_tokens_total, engine_samples.c.estimated_flops_total)
                            .order_by(engine_samples.c.ts)).all()
    assert [tuple(r) for r in rows] == [(123.0, None), (None, 4.5e15)]
