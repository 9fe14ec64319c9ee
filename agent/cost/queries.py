"""Reading the store for the cost engine: raw samples around a time range, and the stored measures.

Each raw read returns the rows inside [start, end) plus the latest rows before `start` and the
earliest at or after `end` (bounded by a row limit, served by the (host, ts) indexes), so that
intervals crossing the range edges are measured exactly once."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Connection, Table, and_, func, select, text

from agent.cost.capacity import LoadReading, edge_ids
from agent.cost.measure import GpuReading
from agent.cost.tokens import COUNTERS, EngineReading, RequestTokens
from agent.store.schema import cost_hours, engine_rollups_1m, engine_samples, gpu_samples, request_records
from agent.utc import as_utc

EDGE_ROWS = 256
"""Rows read before and after a range: enough for every GPU or engine series of a host."""


def _around(conn: Connection, table: Table, columns: Sequence[Any], host: str,
            start: datetime, end: datetime, edge_rows: int) -> list[tuple[Any, ...]]:
    ts = table.c.ts
    base = select(*columns).where(table.c.host == host)
    before = conn.execute(base.where(ts < start).order_by(ts.desc()).limit(edge_rows)).all()
    inside = conn.execute(base.where(and_(ts >= start, ts < end)).order_by(ts)).all()
    after = conn.execute(base.where(ts >= end).order_by(ts).limit(edge_rows)).all()
    return [tuple(r) for r in (*reversed(before), *inside, *after)]


def gpu_readings(conn: Connection, host: str, start: datetime, end: datetime) -> list[GpuReading]:
    t = gpu_samples
    rows = _around(conn, t, (t.c.ts, t.c.uuid, t.c.up, t.c.utilization_ratio, t.c.energy_joules_total,
                             t.c.simulated), host, start, end, EDGE_ROWS)
    return [GpuReading(as_utc(r[0]), str(r[1]), bool(r[2]), _float(r[3]), _float(r[4]), bool(r[5])) for r in rows]


def engine_readings(conn: Connection, host: str, start: datetime, end: datetime) -> list[EngineReading]:
    t = engine_samples
    columns = (t.c.ts, t.c.server, t.c.model, t.c.engine, t.c.up, t.c.simulated, t.c.histograms,
               *(t.c[name] for name in COUNTERS))
    rows = _around(conn, t, columns, host, start, end, EDGE_ROWS // 4)
    out: list[EngineReading] = []
    for r in rows:
        counters = {name: float(v) for name, v in zip(COUNTERS, r[7:], strict=True) if v is not None}
        out.append(EngineReading(
            ts=as_utc(r[0]), series=f"{r[1]}|{r[2]}|{r[3]}", up=bool(r[4]), counters=counters,
            simulated=bool(r[5]), histograms_text=r[6] if r[4] else None,
        ))
    return out


def load_readings(conn: Connection, host: str, start: datetime, end: datetime,
                  window_s: float = 300.0, min_waiting: float | None = None) -> list[LoadReading]:
    """The host's engine scrapes in [start, end) for the capacity estimate (raw samples: as far back
    as store.raw_retention_days keeps them), with the histograms of the window edges only (with
    `min_waiting`: around saturated windows only)."""
    t = engine_samples
    rows = conn.execute(select(t.c.id, t.c.ts, t.c.server, t.c.model, t.c.engine, t.c.up,
                               t.c.generation_tokens_total, t.c.requests_waiting)
                        .where(t.c.host == host, t.c.ts >= start, t.c.ts < end).order_by(t.c.ts)).all()
    readings = [LoadReading(as_utc(r[1]), f"{r[2]}|{r[3]}|{r[4]}", bool(r[5]), _float(r[6]), _float(r[7]),
                            None, int(r[0])) for r in rows]
    return _with_edge_histograms(conn, t.c.id, t.c.histograms, readings, window_s, min_waiting)


def earliest_engine_raw(conn: Connection, host: str, start: datetime, end: datetime) -> datetime | None:
    """The host's first engine scrape in [start, end) (an index probe on (host, ts)), or None."""
    t = engine_samples
    value = conn.execute(select(func.min(t.c.ts)).where(t.c.host == host, t.c.ts >= start, t.c.ts < end)).scalar()
    return as_utc(value) if value is not None else None


def load_rollup_readings(conn: Connection, host: str, start: datetime, end: datetime,
                         window_s: float = 300.0, min_waiting: float | None = None) -> list[LoadReading]:
    """The host's engine minutes in [start, end) from the 1-minute rollups (kept for
    store.rollup_retention_days, past raw retention) as readings load_windows takes: one at each
    minute's end, with the series' generated tokens summed so far, the minute's mean waiting
    requests and its last cumulative latency histograms (read for the window edges only). Each run
    of consecutive minutes is its own series, whose first minute is the base of the next (a gap
    never counts as covered time)."""
    t = engine_rollups_1m
    rows = conn.execute(select(t.c.id, t.c.minute, t.c.server, t.c.model, t.c.engine, t.c.generation_tokens,
                               t.c.requests_waiting_avg)
                        .where(t.c.host == host, t.c.minute >= start, t.c.minute < end)
                        .order_by(t.c.server, t.c.model, t.c.engine, t.c.minute)).all()
    readings: list[LoadReading] = []
    minute = timedelta(minutes=1)
    last: dict[str, tuple[datetime, float, int]] = {}  # series -> (minute, tokens so far, run)
    for r in rows:
        series, at = f"{r[2]}|{r[3]}|{r[4]}", as_utc(r[1])
        previous = last.get(series)
        if previous is not None and at == previous[0] + minute:
            total, run = previous[1] + (_float(r[5]) or 0.0), previous[2]
        else:  # a new run: this minute is the base, its own tokens fall before it
            total, run = 0.0, (previous[2] + 1 if previous is not None else 0)
        last[series] = (at, total, run)
        readings.append(LoadReading(at + minute, f"{series}#{run}", True, total, _float(r[6]), None, int(r[0])))
    return _with_edge_histograms(conn, t.c.id, t.c.latency_histograms, readings, window_s, min_waiting)


def _with_edge_histograms(conn: Connection, ids: Column[Any], histograms: Column[Any], readings: list[LoadReading],
                          window_s: float, min_waiting: float | None) -> list[LoadReading]:
    """The readings, those at the window edges with their histograms text read (500 ids a query)."""
    wanted = sorted(edge_ids(readings, window_s, min_waiting))
    texts: dict[int, str] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        texts.update((int(r[0]), r[1]) for r in conn.execute(
            select(ids, histograms).where(ids.in_(chunk))) if r[1] is not None)
    return [dataclasses.replace(r, histograms_text=texts[r.row_id]) if r.row_id in texts else r for r in readings]


def request_tokens(conn: Connection, host: str, start: datetime, end: datetime) -> list[RequestTokens]:
    t = request_records
    rows = conn.execute(
        select(t.c.ts, t.c.status, t.c.prompt_tokens, t.c.completion_tokens, t.c.cached_tokens, t.c.model,
               t.c.route, t.c.caller, t.c.team)
        .where(t.c.host == host, t.c.ts >= start, t.c.ts < end)
        .order_by(t.c.ts)
    ).all()
    return [RequestTokens(as_utc(r[0]), int(r[1]), r[2], r[3], r[4], str(r[5]), str(r[6]), str(r[7]), r[8] or "")
            for r in rows]


def has_engine_rows(conn: Connection, host: str) -> bool:
    """Whether an engine was ever scraped for this host (then missing scrapes are gaps)."""
    t = engine_samples
    return conn.execute(select(t.c.id).where(t.c.host == host).limit(1)).first() is not None


def earliest_raw(conn: Connection, host: str) -> list[datetime]:
    """The oldest raw row of a host in each table the ledger is computed from (tables with rows)."""
    found: list[datetime] = []
    for t in (gpu_samples, engine_samples, request_records):
        value = conn.execute(select(func.min(t.c.ts)).where(t.c.host == host)).scalar()
        if value is not None:
            found.append(as_utc(value))
    return found


def table_hosts(conn: Connection, table: Table) -> list[str]:
    """Every host of a raw table by a loose index scan of its (host, ts) index: one index probe per
    host, never a scan of the rows (a quarter of 1 Hz samples is millions of them)."""
    name = table.name
    found = conn.execute(text(
        f"WITH RECURSIVE h(host) AS (SELECT min(host) FROM {name} UNION ALL "
        f"SELECT (SELECT min(host) FROM {name} WHERE host > h.host) FROM h WHERE h.host IS NOT NULL) "
        "SELECT host FROM h WHERE host IS NOT NULL")).all()
    return [str(r[0]) for r in found]


def hosts_with_raw(conn: Connection, start: datetime, end: datetime) -> list[str]:
    """Hosts with raw rows in [start, end), each checked by an index probe on (host, ts)."""
    hosts: set[str] = set()
    for t in (gpu_samples, engine_samples, request_records):
        for host in table_hosts(conn, t):
            if host in hosts:
                continue
            probe = select(t.c.ts).where(t.c.host == host, t.c.ts >= start, t.c.ts < end).limit(1)
            if conn.execute(probe).first() is not None:
                hosts.add(host)
    return sorted(hosts)


def measured_hosts(conn: Connection, start: datetime, end: datetime) -> list[str]:
    c = cost_hours.c
    return sorted(str(r[0]) for r in conn.execute(
        select(c.host).where(c.hour >= start, c.hour < end).distinct()))


def resume_hour(conn: Connection, host: str) -> datetime | None:
    """Where measuring resumes for a host: its last stored hour, or the hour after it when that one
    was measured after it ended (complete); None when nothing is stored."""
    c = cost_hours.c
    row = conn.execute(select(c.hour, c.measured_at).where(c.host == host).order_by(c.hour.desc()).limit(1)).first()
    if row is None:
        return None
    hour, measured_at = as_utc(row[0]), as_utc(row[1])
    return hour + timedelta(hours=1) if measured_at >= hour + timedelta(hours=1) else hour


def all_hosts(conn: Connection) -> dict[str, list[str]]:
    """Every host name in each table a report reads, for saying what exists when a report is empty."""
    found: dict[str, list[str]] = {}
    for t in (cost_hours, gpu_samples, engine_samples, request_records):
        found[t.name] = sorted(str(r[0]) for r in conn.execute(select(t.c.host).distinct().limit(50)))
    return found


def _float(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    raise TypeError(f"expected a number, got {value!r}")
