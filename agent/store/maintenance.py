"""Rollups to 1-minute rows and retention. Idempotent: a minute is recomputed whole, so a rerun
(or two sidecars racing on one PostgreSQL) yields the same rows."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, delete, select

from agent.counters import increase
from agent.store.schema import (
    captured_outputs,
    engine_rollups_1m,
    engine_samples,
    gpu_rollups_1m,
    gpu_samples,
    request_records,
    rollup_state,
    spool_replays,
)
from agent.utc import as_utc

log = logging.getLogger(__name__)
CHUNK = timedelta(hours=1)
SPOOL_MARKER_DAYS = timedelta(days=7)


def floor_minute(ts: datetime) -> datetime:
    return as_utc(ts).replace(second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    gpu_minutes: int
    engine_minutes: int
    deleted: dict[str, int]


def _state(conn: Connection, name: str, host: str) -> datetime | None:
    row = conn.execute(select(rollup_state.c.done_until).where(
        rollup_state.c.name == name, rollup_state.c.host == host)).first()
    return as_utc(row[0]) if row else None


def _set_state(conn: Connection, name: str, host: str, until: datetime) -> None:
    conn.execute(delete(rollup_state).where(rollup_state.c.name == name, rollup_state.c.host == host))
    conn.execute(rollup_state.insert().values(name=name, host=host, done_until=until))


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _gpu_minutes(rows: Iterable[Any], host: str) -> list[dict[str, Any]]:
    by_key: dict[tuple[datetime, str], list[Any]] = defaultdict(list)
    last_energy: dict[str, float] = {}
    energy: dict[tuple[datetime, str], float] = defaultdict(float)
    meta: dict[str, tuple[int, str, bool]] = {}
    for row in rows:
        minute = floor_minute(row.ts)
        by_key[(minute, row.uuid)].append(row)
        meta[row.uuid] = (row.gpu_index, row.model, row.simulated)
        if row.energy_joules_total is not None:
            if row.uuid in last_energy:
                energy[(minute, row.uuid)] += increase(last_energy[row.uuid], row.energy_joules_total)
            last_energy[row.uuid] = row.energy_joules_total
    out = []
    for (minute, uuid), group in by_key.items():
        up = [r for r in group if r.up]
        util = [r.utilization_ratio for r in up if r.utilization_ratio is not None]
        power = [r.power_watts for r in up if r.power_watts is not None]
        mem = [r.memory_used_bytes for r in up if r.memory_used_bytes is not None]
        temp = [r.temperature_celsius for r in up if r.temperature_celsius is not None]
        total = [r.memory_total_bytes for r in up if r.memory_total_bytes is not None]
        index, model, simulated = meta[uuid]
        out.append({
            "minute": minute, "host": host, "uuid": uuid, "gpu_index": index, "model": model,
            "samples": len(group), "up_samples": len(up),
            "utilization_avg": _mean(util), "utilization_max": max(util, default=None),
            "memory_used_max_bytes": max(mem, default=None), "memory_total_bytes": max(total, default=None),
            "power_avg_watts": _mean(power), "power_max_watts": max(power, default=None),
            "energy_joules": energy.get((minute, uuid)), "temperature_max_celsius": max(temp, default=None),
            "simulated": simulated,
            "sm_active_avg": _mean([r.sm_active_ratio for r in up if r.sm_active_ratio is not None]),
            "tensor_active_avg": _mean([r.tensor_active_ratio for r in up if r.tensor_active_ratio is not None]),
            "dram_bandwidth_avg": _mean([r.dram_bandwidth_ratio for r in up if r.dram_bandwidth_ratio is not None]),
        })
    return out


LATENCY_HISTOGRAMS = ("ttft_seconds", "inter_token_latency_seconds")
"""The histograms a rollup minute keeps (cumulative, at its last scrape): the measured capacity's
SLO check (agent.cost.capacity TTFT and ITL) on periods older than raw retention."""


def latency_text(text: str | None) -> str | None:
    """The latency histograms of a stored histograms JSON text, as JSON; None without any."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kept = {name: data[name] for name in LATENCY_HISTOGRAMS if name in data}
    return json.dumps(kept, separators=(",", ":")) if kept else None


def _engine_minutes(rows: Iterable[Any], host: str) -> list[dict[str, Any]]:
    groups: dict[tuple[datetime, str, str, str], list[Any]] = defaultdict(list)
    last: dict[tuple[str, str, str], Any] = {}
    inc: dict[tuple[datetime, str, str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    simulated: dict[tuple[str, str, str], bool] = {}
    for row in rows:
        if not row.up:
            continue
        series = (row.server, row.model, row.engine)
        key = (floor_minute(row.ts), *series)
        groups[key].append(row)
        simulated[series] = row.simulated
        prev = last.get(series)
        if prev is not None:
            for col in ("prompt_tokens_total", "generation_tokens_total", "requests_finished_total"):
                inc[key][col] += increase(getattr(prev, col), getattr(row, col))
        last[series] = row
    out = []
    for key, group in groups.items():
        minute, server, model, engine = key
        kv = [r.kv_cache_usage_ratio for r in group if r.kv_cache_usage_ratio is not None]
        out.append({
            "minute": minute, "host": host, "server": server, "model": model, "engine": engine,
            "samples": len(group), "up_samples": len(group),
            "prompt_tokens": inc[key].get("prompt_tokens_total", 0.0),
            "generation_tokens": inc[key].get("generation_tokens_total", 0.0),
            "requests_finished": inc[key].get("requests_finished_total", 0.0),
            "requests_running_avg": _mean([r.requests_running for r in group if r.requests_running is not None]),
            "requests_waiting_avg": _mean([r.requests_waiting for r in group if r.requests_waiting is not None]),
            "kv_cache_usage_avg": _mean(kv), "kv_cache_usage_max": max(kv, default=None),
            "simulated": simulated[(server, model, engine)],
            "latency_histograms": latency_text(max(group, key=lambda r: r.ts).histograms),
        })
    return out


def _rollup(conn: Connection, name: str, host: str, raw: Table, target: Table, order: Sequence[Any],
            build: Any, now: datetime) -> int:
    done = _state(conn, name, host)
    if done is None:
        first = conn.execute(select(raw.c.ts).where(raw.c.host == host).order_by(raw.c.ts).limit(1)).scalar()
        if first is None:
            return 0
        done = floor_minute(first)
    end = floor_minute(now)  # the current minute is still filling
    minutes = 0
    while done < end:
        chunk_end = min(done + CHUNK, end)
        # one sample before the chunk so the first minute's counter increase has a base
        lookback = done - timedelta(minutes=5)
        rows = conn.execute(select(raw).where(raw.c.host == host, raw.c.ts >= lookback, raw.c.ts < chunk_end)
                            .order_by(*order)).all()
        built = [r for r in build(rows, host) if done <= r["minute"] < chunk_end]
        conn.execute(delete(target).where(target.c.host == host, target.c.minute >= done,
                                          target.c.minute < chunk_end))
        if built:
            conn.execute(target.insert(), built)
        minutes += len({r["minute"] for r in built})
        done = chunk_end
        _set_state(conn, name, host, done)
    return minutes


def roll_up(engine: Engine, host: str, now: datetime | None = None) -> tuple[int, int]:
    """Roll completed minutes of this host's raw samples into 1-minute rows."""
    now = as_utc(now or datetime.now(UTC))
    with engine.begin() as conn:
        gpu = _rollup(conn, "gpu_1m", host, gpu_samples, gpu_rollups_1m,
                      (gpu_samples.c.uuid, gpu_samples.c.ts), _gpu_minutes, now)
    with engine.begin() as conn:
        eng = _rollup(conn, "engine_1m", host, engine_samples, engine_rollups_1m,
                      (engine_samples.c.server, engine_samples.c.model, engine_samples.c.engine,
                       engine_samples.c.ts), _engine_minutes, now)
    return gpu, eng


def record_rolled_up(engine: Engine, host: str, until: datetime) -> None:
    """Mark this host's minutes before `until` as rolled up, for a tool that wrote the rollups of a
    history itself (agent.sim.history, in bulk): the agent's roll_up then carries on from there."""
    done = floor_minute(until)
    with engine.begin() as conn:
        for name in ("gpu_1m", "engine_1m"):
            _set_state(conn, name, host, done)


def apply_retention(engine: Engine, host: str, *, raw_days: float, rollup_days: float,
                    now: datetime | None = None) -> dict[str, int]:
    """Delete this host's raw rows past raw_days (only minutes already rolled up), rollups past
    rollup_days, and captured texts past their own expiry."""
    now = as_utc(now or datetime.now(UTC))
    raw_cut = now - timedelta(days=raw_days)
    roll_cut = now - timedelta(days=rollup_days)
    deleted: dict[str, int] = {}
    with engine.begin() as conn:
        for table, state in ((gpu_samples, "gpu_1m"), (engine_samples, "engine_1m")):
            done = _state(conn, state, host)
            cut = min(raw_cut, done) if done is not None else None
            if cut is None:
                continue
            deleted[table.name] = conn.execute(
                delete(table).where(and_(table.c.host == host, table.c.ts < cut))).rowcount
        deleted["request_records"] = conn.execute(delete(request_records).where(
            request_records.c.host == host, request_records.c.ts < raw_cut)).rowcount
        for table in (gpu_rollups_1m, engine_rollups_1m):
            deleted[table.name] = conn.execute(
                delete(table).where(table.c.host == host, table.c.minute < roll_cut)).rowcount
        deleted["captured_outputs"] = conn.execute(
            delete(captured_outputs).where(captured_outputs.c.expires_at < now)).rowcount
        # a writer forgets its batch markers in its next commit; those of a writer that stopped first
        # are only needed until its spool is replayed (see agent.store.writer)
        deleted["spool_replays"] = conn.execute(delete(spool_replays).where(
            spool_replays.c.committed_at < now - SPOOL_MARKER_DAYS)).rowcount
    return deleted


def maintain(engine: Engine, host: str, *, raw_days: float, rollup_days: float,
             now: datetime | None = None) -> MaintenanceReport:
    gpu, eng = roll_up(engine, host, now)
    deleted = apply_retention(engine, host, raw_days=raw_days, rollup_days=rollup_days, now=now)
    if any(deleted.values()):
        log.info("retention removed %s", {k: v for k, v in deleted.items() if v})
    return MaintenanceReport(gpu, eng, deleted)
