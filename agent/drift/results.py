"""Drift results in the store: writing a run's rows, reading each model's latest run back, and the
plain-data form used for JSON output. No Evidently here: exposition and the CLI read results cheaply."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, select

from agent.drift.features import DATASET_FEATURE, INSUFFICIENT_METHOD
from agent.samples import DriftResult
from agent.store.rows import to_row
from agent.store.schema import drift_results
from agent.utc import as_utc


def write_results(engine: Engine, results: Sequence[DriftResult]) -> None:
    """All rows of a run in one transaction, so readers never see half a run."""
    if not results:
        return
    rows = [to_row(result)[1] for result in results]
    with engine.begin() as conn:
        conn.execute(drift_results.insert(), rows)


def is_summary(result: DriftResult) -> bool:
    return result.feature == DATASET_FEATURE


def is_insufficient(result: DriftResult) -> bool:
    return result.method == INSUFFICIENT_METHOD


def _result(row: Any) -> DriftResult:
    return DriftResult(
        ts=as_utc(row.ts), host=row.host, model=row.model, feature=row.feature, method=row.method,
        score=float(row.score), threshold=float(row.threshold), drifted=bool(row.drifted),
        window_start=as_utc(row.window_start), window_end=as_utc(row.window_end),
        reference_start=as_utc(row.reference_start), reference_end=as_utc(row.reference_end),
        n_reference=int(row.n_reference), n_current=int(row.n_current), details=row.details,
    )


def last_run_at(engine: Engine, host: str) -> datetime | None:
    with engine.connect() as conn:
        value = conn.execute(select(func.max(drift_results.c.ts)).where(drift_results.c.host == host)).scalar()
    return as_utc(value) if value is not None else None


def latest_results(engine: Engine, host: str, *, model: str | None = None,
                   stale_after: timedelta | None = timedelta(days=1)) -> list[DriftResult]:
    """Every row of each model's latest run on this host. A model whose latest run is older than
    `stale_after` before the host's last run (retired, or no longer served) is left out."""
    last = last_run_at(engine, host)
    if last is None:
        return []
    t = drift_results
    where = [t.c.host == host, t.c.feature == DATASET_FEATURE]
    if model is not None:
        where.append(t.c.model == model)
    if stale_after is not None:
        where.append(t.c.ts >= last - stale_after)
    latest = select(t.c.model, func.max(t.c.ts).label("ts")).where(*where).group_by(t.c.model).subquery()
    query = (select(t).join(latest, and_(t.c.model == latest.c.model, t.c.ts == latest.c.ts))
             .where(t.c.host == host).order_by(t.c.model, t.c.feature))
    with engine.connect() as conn:
        return [_result(row) for row in conn.execute(query)]


def result_to_dict(result: DriftResult) -> dict[str, Any]:
    """JSON-ready: ISO timestamps, `details` parsed."""
    out: dict[str, Any] = {}
    for item in dataclasses.fields(result):
        value = getattr(result, item.name)
        out[item.name] = value.isoformat() if isinstance(value, datetime) else value
    try:
        out["details"] = json.loads(result.details)
    except ValueError:
        out["details"] = {"raw": result.details}
    return out


def drift_to_json(results: Iterable[DriftResult]) -> str:
    """The results as a JSON array (what `campwatch drift --json` prints)."""
    return json.dumps([result_to_dict(r) for r in results], indent=2, sort_keys=False)
