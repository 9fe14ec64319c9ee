"""Reading one model's rows for one window, sampled down to `max_rows` in SQL.

The sample is deterministic: rows are ranked by a fixed scramble of their id (a multiplicative
hash modulo a prime) and the lowest `max_rows` are kept. So the same rows are picked on every run
while the window holds the same rows, and the pick is spread over the whole window instead of
favouring its first or last hours. Only requests that produced an output are read (2xx status, no
error, output_chars known): output drift is about what the model said, errors are the SLOs' job."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Table, and_, func, select

from agent.store.schema import captured_outputs, request_records

_PRIME = 2_147_483_647
"""2^31 - 1: (id mod P) x multiplier stays below 2^62, so the key never overflows a BIGINT."""
_MULTIPLIER = 1_327_217_884
"""About P divided by the golden ratio: consecutive ids land far apart in key order."""


@dataclass(frozen=True, slots=True)
class Sample:
    """Rows of one window (`columns` name each tuple's fields) and how many the window held."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    available: int

    @property
    def n(self) -> int:
        return len(self.rows)


def _sample_key(table: Table) -> ColumnElement[Any]:
    return ((table.c.id % _PRIME) * _MULTIPLIER) % _PRIME


def _record_filter(host: str, model: str | None, start: datetime, end: datetime) -> ColumnElement[bool]:
    t = request_records
    conditions = [
        t.c.host == host, t.c.ts >= start, t.c.ts < end,
        t.c.status >= 200, t.c.status < 300, t.c.error.is_(None), t.c.output_chars.is_not(None),
    ]
    if model is not None:
        conditions.append(t.c.model == model)
    return and_(*conditions)


def _sampled(conn: Connection, table: Table, where: ColumnElement[bool], columns: Sequence[str],
             max_rows: int) -> Sample:
    available = int(conn.execute(select(func.count()).select_from(table).where(where)).scalar_one())
    query = select(*(table.c[name] for name in columns)).where(where)
    if available > max_rows:
        query = query.order_by(_sample_key(table)).limit(max_rows)
    rows = tuple(tuple(row) for row in conn.execute(query))
    return Sample(tuple(columns), rows, available)


def models_in_window(engine: Engine, host: str, start: datetime, end: datetime) -> list[str]:
    """Models that produced at least one output on this host in [start, end), sorted."""
    query = (select(request_records.c.model).where(_record_filter(host, None, start, end))
             .distinct().order_by(request_records.c.model))
    with engine.connect() as conn:
        return [str(model) for model in conn.execute(query).scalars()]


def load_records(engine: Engine, host: str, model: str, start: datetime, end: datetime,
                 columns: Sequence[str], max_rows: int) -> Sample:
    """The given request_records columns for one model's outputs in [start, end)."""
    unknown = [name for name in columns if name not in request_records.c]
    if unknown:
        raise ValueError(f"columns: expected request_records columns, got unknown {unknown}")
    with engine.connect() as conn:
        return _sampled(conn, request_records, _record_filter(host, model, start, end), columns, max_rows)


def load_texts(engine: Engine, host: str, model: str, start: datetime, end: datetime, now: datetime,
               max_rows: int) -> Sample:
    """Captured output texts of one model in [start, end) that have not expired by `now`."""
    t = captured_outputs
    where = and_(t.c.host == host, t.c.model == model, t.c.ts >= start, t.c.ts < end, t.c.expires_at > now)
    with engine.connect() as conn:
        return _sampled(conn, t, where, ("text",), max_rows)
