"""The durable cost record: hourly measures (cost_hours) and request groups (cost_request_groups),
measured idempotently from raw samples. No money is stored: agent.cost.pricing prices the measures
at report time with the settings in force, so reports keep working after raw samples are purged
by retention, and a price change is never frozen into old hours.

Only the running agent writes (refresh_ledger, from its cost job); reports read
(measures_for_report), measuring in memory the hours the agent has not stored yet."""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, select, tuple_

from agent.config import CostSettings
from agent.cost import queries
from agent.cost.measure import measure_gpus
from agent.cost.measures import (
    HourMeasure,
    RequestGroup,
    TokenSource,
    group_requests,
    histogram_from_json,
    measure_hour,
)
from agent.cost.pricing import ApiPricing, LedgerRow, price_rows, pricing_for
from agent.cost.tokens import measure_engine
from agent.cost.units import HOUR, hour_ceil, hour_floor, hours_between
from agent.store.db import store_errors
from agent.store.schema import cost_hours, cost_request_groups
from agent.utc import as_utc

log = logging.getLogger(__name__)

__all__ = ["ApiPricing", "LedgerRow", "Measured", "measure_range", "measures_for_report", "pricing_for",
           "read_ledger", "read_measures", "recompute_ledger", "refresh_ledger"]

Measured = tuple[list[HourMeasure], dict[tuple[str, datetime], list[RequestGroup]]]
"""Hourly measures, and the request groups of each (host, hour)."""


def _slice(items: Sequence[Any], times: Sequence[float], start: float, end: float, edge: int) -> list[Any]:
    """The items in [start, end) plus `edge` items either side (items sorted by time)."""
    lo, hi = bisect.bisect_left(times, start), bisect.bisect_left(times, end)
    return list(items[max(lo - edge, 0):hi + edge])


def measure_range(engine: Engine, settings: CostSettings, host: str, start: datetime, end: datetime,
                  measured_at: datetime) -> Measured:
    """Measures of one host for the whole hours overlapping [start, end), from raw samples (reads only).

    Raw rows are read up to a day at a time; each hour is measured from its own rows plus, either
    side, two readings per series (GPU, engine series) of that read: enough for the intervals that
    cross its edges, and the same whatever range is asked for. So the agent's refresh reads only
    the hours since its last one, and a backfill reads each row once."""
    measures: list[HourMeasure] = []
    groups: dict[tuple[str, datetime], list[RequestGroup]] = {}
    hours = hours_between(start, end)
    with engine.connect() as conn:
        engine_configured = queries.has_engine_rows(conn, host)
        for first in range(0, len(hours), 24):
            chunk = hours[first:first + 24]
            lo, hi = chunk[0], chunk[-1] + HOUR
            gpu_all = queries.gpu_readings(conn, host, lo, hi)
            eng_all = queries.engine_readings(conn, host, lo, hi)
            req_all = queries.request_tokens(conn, host, lo, hi)
            gpu_t = [r.ts.timestamp() for r in gpu_all]
            eng_t = [r.ts.timestamp() for r in eng_all]
            req_t = [r.ts.timestamp() for r in req_all]
            gpu_edge = min(max(2 * len({r.uuid for r in gpu_all}), 8), queries.EDGE_ROWS)
            eng_edge = min(max(2 * len({r.series for r in eng_all}), 4), queries.EDGE_ROWS // 4)
            for hour in chunk:
                until = hour + HOUR
                a, b = hour.timestamp(), until.timestamp()
                gpu = measure_gpus(_slice(gpu_all, gpu_t, a, b, gpu_edge), hour, until, settings.gap_factor)
                eng = measure_engine(_slice(eng_all, eng_t, a, b, eng_edge), hour, until, settings.gap_factor)
                records = _slice(req_all, req_t, a, b, 0)
                m = measure_hour(host, hour, gpu.get(hour), eng.get(hour), records, engine_configured, measured_at)
                if m is not None:
                    measures.append(m)
                    groups[(host, hour)] = group_requests(host, records)
    return measures, groups


def _fresh(engine: Engine, settings: CostSettings, start: datetime, end: datetime, host: str | None,
           measured_at: datetime) -> tuple[Measured, dict[str, datetime]]:
    """Measures recomputed from raw for [start, end), and per host the hour from which every raw table
    with rows for it reaches back (before it, raw may have been purged: see _keep)."""
    with engine.connect() as conn:
        hosts = [host] if host is not None else queries.hosts_with_raw(conn, hour_floor(start), hour_ceil(end))
        horizons = {h: queries.earliest_raw(conn, h) for h in hosts}
    measures: list[HourMeasure] = []
    groups: dict[tuple[str, datetime], list[RequestGroup]] = {}
    complete: dict[str, datetime] = {}
    for h in hosts:
        earliest = horizons[h]
        if not earliest:
            continue
        first = max(hour_floor(start), hour_floor(min(earliest)))
        part, part_groups = measure_range(engine, settings, h, first, end, measured_at)
        measures += part
        groups.update(part_groups)
        complete[h] = hour_floor(max(earliest))
    return (measures, groups), complete


def _keep(fresh: HourMeasure, stored: HourMeasure | None, complete_from: datetime) -> bool:
    """Whether a fresh measure replaces the stored one. Retention purges raw tables at different
    times, so an hour is only replaced while every raw table reaches back to it; older hours are only
    filled in when missing, and the hour where the latest-starting table begins only by a measure
    covering at least as much time and as many tokens."""
    if stored is None or fresh.hour > complete_from:
        return True
    if fresh.hour < complete_from:
        return False
    return stored.coverage() <= fresh.coverage()


def recompute_ledger(
    engine: Engine, settings: CostSettings, start: datetime, end: datetime, host: str | None = None,
    *, now: datetime | None = None,
) -> int:
    """Measure and store the whole hours overlapping [start, end), for one host or every host with
    raw data there. Returns the number of hours written. Idempotent: the same raw data gives the
    same rows (only measured_at changes). Writes: the running agent's job, never a report."""
    start, end = as_utc(start), as_utc(end)
    measured_at = as_utc(now) if now is not None else datetime.now(UTC)
    with store_errors(f"cost measures in {_shown(engine)}"):
        (measures, groups), complete = _fresh(engine, settings, start, end, host, measured_at)
        stored = _stored_index(engine, measures)
        chosen = [m for m in measures if _keep(m, stored.get((m.host, m.hour)), complete[m.host])]
        return _write(engine, chosen, groups)


def _shown(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _stored_index(engine: Engine, measures: Sequence[HourMeasure]) -> dict[tuple[str, datetime], HourMeasure]:
    if not measures:
        return {}
    lo, hi = min(m.hour for m in measures), max(m.hour for m in measures) + HOUR
    hosts = sorted({m.host for m in measures})
    found, _ = read_measures(engine, lo, hi, None, with_groups=False)
    return {(m.host, m.hour): m for m in found if m.host in hosts}


def _write(engine: Engine, measures: Sequence[HourMeasure],
           groups: dict[tuple[str, datetime], list[RequestGroup]]) -> int:
    if not measures:
        return 0
    # the backend's own upsert, imported for the backend in use (PostgreSQL's dialect is 1.6 MiB)
    insert: Any
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    values = [m.values() for m in measures]
    statement = insert(cost_hours)
    updated = {name: statement.excluded[name] for name in values[0] if name not in ("hour", "host")}
    g = cost_request_groups.c
    with engine.begin() as conn:
        for chunk in _chunks(values, 500):
            conn.execute(statement.on_conflict_do_update(index_elements=["hour", "host"], set_=updated), chunk)
        keys = [(m.host, m.hour) for m in measures]
        for chunk_keys in _chunks(keys, 200):
            conn.execute(delete(cost_request_groups).where(tuple_(g.host, g.hour).in_(chunk_keys)))
        rows = [_group_values(x) for key in keys for x in groups.get(key, ())]
        for chunk in _chunks(rows, 2000):
            conn.execute(cost_request_groups.insert(), chunk)
    return len(measures)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _group_values(x: RequestGroup) -> dict[str, object]:
    return {"slot": x.slot, "hour": x.hour, "host": x.host, "model": x.model, "route": x.route,
            "caller": x.caller, "team": x.team, "input_min": x.input_min, "input_max": x.input_max,
            "requests": x.requests, "input_tokens": x.input_tokens, "output_tokens": x.output_tokens,
            "cached_tokens": x.cached_tokens}


def read_measures(engine: Engine, start: datetime, end: datetime, host: str | None = None,
                  *, with_groups: bool = True) -> Measured:
    """Stored measures with hour in [floor(start), end), oldest first, and their request groups."""
    c = cost_hours.c
    query = select(cost_hours).where(c.hour >= hour_floor(start), c.hour < as_utc(end))
    if host is not None:
        query = query.where(c.host == host)
    groups: dict[tuple[str, datetime], list[RequestGroup]] = defaultdict(list)
    with engine.connect() as conn:
        result = conn.execute(query.order_by(c.hour, c.host)).mappings().all()
        if with_groups:
            g = cost_request_groups.c
            gq = select(g.slot, g.host, g.model, g.route, g.caller, g.team, g.input_min, g.input_max, g.requests,
                        g.input_tokens, g.output_tokens, g.cached_tokens).where(
                g.hour >= hour_floor(start), g.hour < as_utc(end))
            if host is not None:
                gq = gq.where(g.host == host)
            for r in conn.execute(gq):
                slot = as_utc(r[0])
                groups[(str(r[1]), slot.replace(minute=0))].append(RequestGroup(
                    slot, str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), int(r[6]), int(r[7]), int(r[8]),
                    int(r[9]), int(r[10]), int(r[11])))
    measures = [HourMeasure(
        hour=as_utc(r["hour"]), host=r["host"], gpus=int(r["gpus"]), held_seconds=float(r["held_seconds"]),
        allocated_gpu_seconds=float(r["allocated_gpu_seconds"]),
        observed_gpu_seconds=float(r["observed_gpu_seconds"]), gpu_gap_seconds=float(r["gpu_gap_seconds"]),
        busy_gpu_seconds=float(r["busy_gpu_seconds"]), engine_gap_seconds=float(r["engine_gap_seconds"]),
        energy_joules=float(r["energy_joules"]), engine_prompt_tokens=int(r["engine_prompt_tokens"]),
        engine_generation_tokens=int(r["engine_generation_tokens"]),
        engine_cached_tokens=int(r["engine_cached_tokens"]), engine_requests=int(r["engine_requests"]),
        engine_prompt_histogram=histogram_from_json(r["engine_prompt_histogram"]),
        proxy_prompt_tokens=int(r["proxy_prompt_tokens"]), proxy_generation_tokens=int(r["proxy_generation_tokens"]),
        proxy_cached_tokens=int(r["proxy_cached_tokens"]), proxy_requests=int(r["proxy_requests"]),
        proxy_unpriced_requests=int(r["proxy_unpriced_requests"]), token_source=_source(r["token_source"]),
        request_groups=bool(r["request_groups"]), simulated=bool(r["simulated"]),
        measured_at=as_utc(r["measured_at"]),
    ) for r in result]
    return measures, dict(groups)


def refresh_ledger(engine: Engine, settings: CostSettings, start: datetime, now: datetime,
                   host: str | None = None) -> int:
    """Bring the stored measures up to date for [start, now): re-measure from each host's last stored
    hour (which may have been partial) or from `start` when the host has none. The agent's job."""
    with engine.connect() as conn:
        hosts = [host] if host is not None else sorted(
            set(queries.hosts_with_raw(conn, hour_floor(start), now)) | set(queries.measured_hosts(conn, start, now)))
        lasts = {h: queries.resume_hour(conn, h) for h in hosts}
    written = 0
    for h in hosts:
        last = lasts[h]
        first = max(hour_floor(start), last) if last is not None else hour_floor(start)
        written += recompute_ledger(engine, settings, first, now, h, now=now)
    return written


def measures_for_report(engine: Engine, settings: CostSettings, start: datetime, end: datetime,
                        host: str | None = None, *, now: datetime | None = None) -> Measured:
    """What a report prices, without writing: the stored measures of [start, end), with the hours
    after each host's last stored hour (and that hour, possibly partial when stored) measured in
    memory from raw samples. Raises StoreError."""
    start, end = as_utc(start), as_utc(end)
    measured_at = as_utc(now) if now is not None else datetime.now(UTC)
    with store_errors(f"reading cost measures from {_shown(engine)}"):
        measures, groups = read_measures(engine, start, end, host)
        with engine.connect() as conn:
            hosts = [host] if host is not None else sorted(
                set(queries.hosts_with_raw(conn, hour_floor(start), hour_ceil(end)))
                | {m.host for m in measures})
            lasts = {h: queries.resume_hour(conn, h) for h in hosts}
        stored = {(m.host, m.hour): m for m in measures}
        for h in hosts:
            last = lasts[h]
            first = max(hour_floor(start), last) if last is not None else hour_floor(start)
            if first >= end:
                continue
            with engine.connect() as conn:
                if last is not None and h not in queries.hosts_with_raw(conn, first, end):
                    continue  # every hour is stored and complete: nothing to measure in memory
            (fresh, fresh_groups), complete = _fresh(engine, settings, first, end, h, measured_at)
            for m in fresh:
                if _keep(m, stored.get((m.host, m.hour)), complete[m.host]):
                    stored[(m.host, m.hour)] = m
                    groups[(m.host, m.hour)] = fresh_groups.get((m.host, m.hour), [])
        return sorted(stored.values(), key=lambda m: (m.hour, m.host)), groups


def read_ledger(engine: Engine, settings: CostSettings, start: datetime, end: datetime,
                host: str | None = None) -> list[LedgerRow]:
    """The stored measures of [start, end) priced with `settings` (reads only)."""
    from agent.cost.baselines import resolve_baselines

    measures, groups = read_measures(engine, start, end, host)
    rows, _ = price_rows(measures, groups, settings, resolve_baselines(settings))
    return rows


def _source(value: object) -> TokenSource:
    if value in ("proxy", "engine", "none"):
        return value
    return "none"
