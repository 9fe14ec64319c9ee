"""Sample rows for store tests and benchmarks, written through agent.store.rows (the one
sample-to-row mapping), and a row count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Engine, Table, func, select

from agent.samples import EngineSample, GpuSample, RequestRecord, Row
from agent.store.rows import insert_rows
from agent.store.schema import engine_samples, gpu_samples, request_records

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


def gpu_rows(n: int, start: int = 0, host: str = "h1") -> list[GpuSample]:
    return [GpuSample(ts=T0 + timedelta(seconds=start + i), host=host, gpu_index=0, uuid="GPU-0", model="H100",
                      up=True, values={"utilization_ratio": 0.5, "power_watts": 300.0 + i})
            for i in range(n)]


def request(model: str = "m", route: str = "/v1/chat/completions", **extra: object) -> RequestRecord:
    fields: dict[str, object] = dict(ts=T0, host="h1", request_id="r1", upstream="http://up:8000", route=route,
                                     method="POST", model=model, status=200, stream=False, caller="c",
                                     latency_seconds=0.5)
    fields.update(extra)
    return RequestRecord(**fields)  # type: ignore[arg-type]


def engine_row(model: str) -> EngineSample:
    return EngineSample(ts=T0, host="h1", server="http://e/metrics", kind="vllm", model=model, engine="0",
                        up=True, values={"prompt_tokens_total": 1.0})


def write_rows(engine: Engine, rows: Sequence[Row]) -> int:
    """Insert value-type rows in one transaction the way the store maps them; returns how many."""
    insert_rows(engine, rows)
    return len(rows)


def count(engine: Engine, table: Table = gpu_samples, *where: ColumnElement[bool]) -> int:
    """Rows in `table` (matching `where`)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar() or 0)


__all__ = ["T0", "count", "engine_row", "engine_samples", "gpu_rows", "request", "request_records", "write_rows"]
