"""How each value type becomes a table row: the one mapping between samples and schema."""

from __future__ import annotations

import dataclasses
import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, Engine, String, Table, Text

from agent.concepts.engine import ENGINE_STORED_HISTOGRAMS, ENGINE_STORED_VALUES
from agent.concepts.gpu import GPU_STORED_FIELDS
from agent.samples import CapturedOutput, DriftResult, EngineSample, GpuSample, RequestRecord, Row
from agent.store.schema import (
    captured_outputs,
    drift_results,
    engine_samples,
    gpu_samples,
    request_records,
)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _gpu_row(sample: GpuSample) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ts": sample.ts, "host": sample.host, "gpu_index": sample.gpu_index, "uuid": sample.uuid,
        "model": sample.model, "up": sample.up, "simulated": sample.simulated,
    }
    for name in GPU_STORED_FIELDS:
        row[name] = _finite(sample.values.get(name))
    return row


def _engine_row(sample: EngineSample) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ts": sample.ts, "host": sample.host, "server": sample.server, "kind": sample.kind,
        "model": sample.model, "engine": sample.engine, "up": sample.up, "simulated": sample.simulated,
    }
    for name in ENGINE_STORED_VALUES:
        row[name] = _finite(sample.values.get(name))
    kept = {
        name: {"buckets": [[_le(le), count] for le, count in h.buckets], "sum": h.sum, "count": h.count}
        for name, h in sample.histograms.items()
        if name in ENGINE_STORED_HISTOGRAMS
    }
    row["histograms"] = json.dumps(kept, separators=(",", ":")) if kept else None
    return row


def _le(bound: float) -> float | str:
    return "+Inf" if math.isinf(bound) else bound


def _plain(record: Any) -> dict[str, Any]:
    # shallow: every field of these types is a scalar, and dataclasses.asdict's deep copy of each
    # value cost more per proxied request than the rest of the record's way to the store
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


ROW_TABLES: Mapping[type, tuple[Table, Callable[[Any], dict[str, Any]]]] = {
    GpuSample: (gpu_samples, _gpu_row),
    EngineSample: (engine_samples, _engine_row),
    RequestRecord: (request_records, _plain),
    CapturedOutput: (captured_outputs, _plain),
    DriftResult: (drift_results, _plain),
}


def to_row(item: Row) -> tuple[Table, dict[str, Any]]:
    table, convert = ROW_TABLES[type(item)]
    return table, convert(item)


# --- making values storable -------------------------------------------------------------------

TRUNCATION_MARK = "…"
"""Ends a string cut to its column's length, so a reader sees it was cut."""


@dataclass(frozen=True, slots=True)
class TableCodec:
    """A table's insertable columns in order, which of them are text (with their declared
    length, None for unbounded) and which are timestamps (for the spool's JSON form)."""

    table: Table
    columns: tuple[str, ...]
    text_limits: tuple[tuple[int, int | None], ...]
    datetimes: frozenset[str]

    @classmethod
    def of(cls, table: Table) -> TableCodec:
        cols = [c for c in table.columns if not (c.primary_key and c.autoincrement is True)]
        limits = []
        for i, col in enumerate(cols):
            if isinstance(col.type, (String, Text)):
                limits.append((i, None if isinstance(col.type, Text) else col.type.length))
        return cls(table, tuple(c.name for c in cols), tuple(limits),
                   frozenset(c.name for c in cols if isinstance(c.type, DateTime)))


CODECS: Mapping[str, TableCodec] = {table.name: TableCodec.of(table) for table, _ in ROW_TABLES.values()}


def clean_text(value: str, limit: int | None) -> tuple[str, str | None]:
    """(storable value, reason or None): NUL removed (PostgreSQL text cannot hold it), then cut to
    `limit` characters ending in TRUNCATION_MARK. Reason "nul" wins when both apply."""
    reason = None
    if "\x00" in value:
        value = value.replace("\x00", "")
        reason = "nul"
    if limit is not None and len(value) > limit:
        value = value[: max(limit - len(TRUNCATION_MARK), 0)] + TRUNCATION_MARK
        reason = reason or "truncated"
    return value, reason


def _direct_getters() -> dict[type, tuple[TableCodec, Callable[[Any], tuple[Any, ...]]]]:
    """For the plain types whose fields name every column of their table: the column-order value
    tuple in one attrgetter call, with no dict in between (encode runs on the proxy's event loop)."""
    getters: dict[type, tuple[TableCodec, Callable[[Any], tuple[Any, ...]]]] = {}
    for kind, (table, convert) in ROW_TABLES.items():
        codec = CODECS[table.name]
        names = {f.name for f in dataclasses.fields(kind)}
        if convert is _plain and len(codec.columns) > 1 and set(codec.columns) <= names:
            getters[kind] = (codec, operator.attrgetter(*codec.columns))
    return getters


_DIRECT = _direct_getters()


def encode(item: Row) -> tuple[TableCodec, tuple[Any, ...], list[str]]:
    """The row as a compact value tuple in its table's column order, made storable; with the
    sanitizing reasons applied (one per changed value)."""
    direct = _DIRECT.get(type(item))
    if direct is not None:
        codec, getter = direct
        values = list(getter(item))
    else:
        table, row = to_row(item)
        codec = CODECS[table.name]
        values = [row.get(name) for name in codec.columns]
    reasons: list[str] = []
    for index, limit in codec.text_limits:
        value = values[index]
        if isinstance(value, str):
            fixed, reason = clean_text(value, limit)
            if reason is not None:
                values[index] = fixed
                reasons.append(reason)
    return codec, tuple(values), reasons


def insert_rows(engine: Engine, rows: Sequence[Row]) -> None:
    """Insert rows in one transaction through the one sample-to-row mapping (made storable as the
    writer makes them), by the backend's bulk path, for tools that write a history directly
    (seeding, tests). The agent's own path is the batching writer."""
    from agent.store.writer import bulk_insert

    by_codec: dict[str, tuple[TableCodec, list[tuple[Any, ...]]]] = {}
    for item in rows:
        codec, values, _ = encode(item)
        by_codec.setdefault(codec.table.name, (codec, []))[1].append(values)
    with engine.begin() as conn:
        for codec, values_list in by_codec.values():
            bulk_insert(conn, codec, values_list)


def insert_columns(engine: Engine, table: Table, columns: Mapping[str, Sequence[Any]]) -> int:
    """Insert a column-oriented batch (equal-length sequences keyed by column name; insertable
    columns left out are NULL) in one transaction by the backend's bulk path: a generator that
    builds its rows with numpy writes them without a value object per row. Text is made storable
    as encode() makes it. ValueError naming the column that is unknown or of another length."""
    from agent.store.writer import bulk_insert

    codec = CODECS.get(table.name) or TableCodec.of(table)
    unknown = sorted(set(columns) - set(codec.columns))
    if unknown:
        raise ValueError(f"{table.name}: no insertable column {unknown[0]!r} (expected one of "
                         f"{', '.join(codec.columns)})")
    lengths = {name: len(values) for name, values in columns.items()}
    n = max(lengths.values(), default=0)
    uneven = sorted(name for name, length in lengths.items() if length != n)
    if uneven:
        raise ValueError(f"{table.name}.{uneven[0]}: expected {n} values like the other columns, got "
                         f"{lengths[uneven[0]]}")
    texts = dict(codec.text_limits)
    ordered: list[Sequence[Any]] = []
    for i, name in enumerate(codec.columns):
        values = columns.get(name)
        if values is None:
            ordered.append([None] * n)
        elif i in texts:
            ordered.append([clean_text(v, texts[i])[0] if isinstance(v, str) else v for v in values])
        else:
            ordered.append(values)
    with engine.begin() as conn:
        bulk_insert(conn, codec, list(zip(*ordered, strict=True)) if n else [])
    return n
