"""Exposition from stored drift results: SQL only, no Evidently."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from agent.catalog import CATALOG
from agent.drift.catalog import DRIFT_METRICS
from agent.drift.features import DATASET_FEATURE, INSUFFICIENT_METHOD, SHARE_METHOD
from agent.drift.points import drift_points
from agent.drift.results import write_results
from agent.samples import DriftResult, Point, labels
from tests.support.traffic import HOST

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _row(ts: datetime, model: str, feature: str, score: float, drifted: bool, *, method: str = "K-S p_value",
         host: str = HOST) -> DriftResult:
    return DriftResult(ts=ts, host=host, model=model, feature=feature, method=method, score=score, threshold=0.05,
                       drifted=drifted, window_start=ts - timedelta(hours=1), window_end=ts,
                       reference_start=ts - timedelta(days=1), reference_end=ts - timedelta(hours=1),
                       n_reference=300, n_current=300, details=json.dumps({"status": "ok"}))


def _values(points: list[Point]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(p.name, p.labels): p.value for p in points}


def test_points_come_from_each_models_latest_run_only(any_engine: Engine) -> None:
    engine = any_engine
    earlier, later = T0, T0 + timedelta(hours=1)
    write_results(engine, [
        _row(earlier, "llama", "refusal", 0.001, True),
        _row(earlier, "llama", DATASET_FEATURE, 1.0, True, method=SHARE_METHOD),
        _row(later, "llama", "refusal", 0.4, False),
        _row(later, "llama", "output_chars", 0.01, True),
        _row(later, "llama", DATASET_FEATURE, 0.5, True, method=SHARE_METHOD),
        _row(later, "qwen", DATASET_FEATURE, 0.0, False, method=INSUFFICIENT_METHOD),
        _row(later + timedelta(hours=5), "llama", DATASET_FEATURE, 0.0, False, host="other-host",
             method=SHARE_METHOD),
    ])
    values = _values(drift_points(engine, HOST))
    assert values == {
        ("campwatch_drift_last_run_timestamp_seconds", labels(host=HOST)): later.timestamp(),
        ("campwatch_drift_score", labels(host=HOST, model="llama", feature="refusal")): 0.4,
        ("campwatch_drift_detected", labels(host=HOST, model="llama", feature="refusal")): 0.0,
        ("campwatch_drift_score", labels(host=HOST, model="llama", feature="output_chars")): 0.01,
        ("campwatch_drift_detected", labels(host=HOST, model="llama", feature="output_chars")): 1.0,
        ("campwatch_drift_share_drifted", labels(host=HOST, model="llama")): 0.5,
        ("campwatch_drift_insufficient_data", labels(host=HOST, model="llama")): 0.0,
        ("campwatch_drift_insufficient_data", labels(host=HOST, model="qwen")): 1.0,
    }


def test_a_model_not_checked_for_a_day_is_no_longer_exposed(any_engine: Engine) -> None:
    engine = any_engine
    write_results(engine, [
        _row(T0, "retired", "refusal", 0.001, True),
        _row(T0, "retired", DATASET_FEATURE, 1.0, True, method=SHARE_METHOD),
        _row(T0 + timedelta(days=2), "llama", DATASET_FEATURE, 0.0, False, method=SHARE_METHOD),
    ])
    models = {dict(p.labels).get("model") for p in drift_points(engine, HOST)}
    assert models == {None, "llama"}
    assert "retired" in {dict(p.labels).get("model") for p in drift_points(engine, HOST, stale_after=None)}


def test_no_results_no_points(engine: Engine) -> None:
    assert drift_points(engine, HOST) == []


def test_every_point_is_a_declared_family_with_its_declared_labels(engine: Engine) -> None:
    write_results(engine, [_row(T0, "m", "refusal", 0.3, False),
                           _row(T0, "m", DATASET_FEATURE, 0.0, False, method=SHARE_METHOD)])
    points = drift_points(engine, HOST)
    assert {p.name for p in points} == {spec.name for spec in DRIFT_METRICS}
    for point in points:
        assert tuple(k for k, _ in point.labels) == tuple(sorted(CATALOG[point.name].labels))


def test_exposition_cli_and_worker_modules_do_not_import_evidently() -> None:
    code = ("import sys, agent.drift.points, agent.drift.render, agent.drift.worker, agent.drift.check\n"
            "sys.exit(1 if any(m.startswith('evidently') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
