"""DataFrames the review notebooks read: all SQL lives here, none in the notebooks. Cost figures come
from the cost engine's report (agent.review.quarterly), not from the ledger table directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, Select, Table, select

from agent.store.schema import drift_results, engine_rollups_1m, gpu_rollups_1m, request_records


def stored_hosts(engine: Engine) -> dict[str, list[str]]:
    """The hosts each table a report reads holds rows for: what a report scoped to "all hosts"
    covers, and what an empty answer names instead."""
    from agent.store.schema import cost_hours, engine_samples, gpu_samples

    found: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for table in (request_records, drift_results, cost_hours, gpu_samples, engine_samples):
            found[table.name] = sorted(str(r[0]) for r in conn.execute(select(table.c.host).distinct().limit(100)))
    return found


def _window(since: timedelta | datetime, until: datetime | None) -> tuple[datetime, datetime]:
    end = until or datetime.now(UTC)
    start = end - since if isinstance(since, timedelta) else since
    return start, end


def _frame(engine: Engine, query: Select[tuple[object, ...]], time_columns: tuple[str, ...]) -> pd.DataFrame:
    with engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    for column in time_columns:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _ranged(table: Table, column: str, start: datetime, end: datetime, host: str | None,
            leave_out: tuple[str, ...] = ()) -> Select[tuple[object, ...]]:
    query = select(*(c for c in table.c if c.name not in leave_out)).where(table.c[column] >= start,
                                                                          table.c[column] < end)
    if host is not None:
        query = query.where(table.c.host == host)
    return query.order_by(table.c[column])


def gpu_minutes(engine: Engine, since: timedelta | datetime = timedelta(days=90), until: datetime | None = None,
                host: str | None = None) -> pd.DataFrame:
    """One row per GPU-minute: utilization avg/max, memory, power, energy (J), temperature."""
    start, end = _window(since, until)
    return _frame(engine, _ranged(gpu_rollups_1m, "minute", start, end, host), ("minute",))


def engine_minutes(engine: Engine, since: timedelta | datetime = timedelta(days=90), until: datetime | None = None,
                   host: str | None = None) -> pd.DataFrame:
    """One row per (server, model, engine) minute: token and request increases, queue and KV-cache."""
    start, end = _window(since, until)
    # the latency histograms (JSON kept for the capacity estimate) stay in the store
    return _frame(engine, _ranged(engine_rollups_1m, "minute", start, end, host, ("latency_histograms",)),
                  ("minute",))


def requests(engine: Engine, since: timedelta | datetime = timedelta(days=7), until: datetime | None = None,
             host: str | None = None, model: str | None = None) -> pd.DataFrame:
    """Per-request records from the capture proxy (no text)."""
    start, end = _window(since, until)
    query = _ranged(request_records, "ts", start, end, host)
    if model is not None:
        query = query.where(request_records.c.model == model)
    return _frame(engine, query, ("ts",))


def drift(engine: Engine, since: timedelta | datetime = timedelta(days=30), until: datetime | None = None,
          host: str | None = None) -> pd.DataFrame:
    start, end = _window(since, until)
    return _frame(engine, _ranged(drift_results, "ts", start, end, host),
                  ("ts", "window_start", "window_end", "reference_start", "reference_end"))


def captured_outputs(engine: Engine, since: timedelta | datetime = timedelta(days=7), until: datetime | None = None,
                     host: str | None = None, model: str | None = None) -> pd.DataFrame:
    """The sampled outputs capture.store_text kept, still retained at `until` (expires_at after it):
    redacted when captured (agent.capture.redact); prompts are never kept."""
    from agent.store.schema import captured_outputs as table

    start, end = _window(since, until)
    query = select(table.c.ts, table.c.host, table.c.model, table.c.text).where(
        table.c.ts >= start, table.c.ts < end, table.c.expires_at > end)
    if host is not None:
        query = query.where(table.c.host == host)
    if model is not None:
        query = query.where(table.c.model == model)
    return _frame(engine, query.order_by(table.c.ts), ("ts",))
