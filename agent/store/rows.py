"""How each value type becomes a table row: the one mapping between samples and schema."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Table

from agent.samples import CapturedOutput, DriftResult, EngineSample, GpuSample, RequestRecord, Row
from agent.store.schema import (
    ENGINE_STORED_HISTOGRAMS,
    ENGINE_STORED_VALUES,
    GPU_STORED_FIELDS,
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
    return dataclasses.asdict(record)


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
