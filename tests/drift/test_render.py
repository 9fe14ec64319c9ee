from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from rich.console import Console

from agent.drift.features import DATASET_FEATURE, INSUFFICIENT_METHOD, SHARE_METHOD
from agent.drift.render import render_drift
from agent.drift.results import drift_to_json
from agent.samples import DriftResult

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _row(model: str, feature: str, method: str, score: float, drifted: bool, details: dict[str, object]) -> DriftResult:
    return DriftResult(ts=T0, host="h1", model=model, feature=feature, method=method, score=score, threshold=0.05,
                       drifted=drifted, window_start=T0 - timedelta(hours=24), window_end=T0,
                       reference_start=T0 - timedelta(days=8), reference_end=T0 - timedelta(hours=24),
                       n_reference=300, n_current=280, details=json.dumps(details))


RESULTS = [
    _row("llama", "refusal", "Z-test p_value", 1e-9, True, {
        "reference": {"n": 300, "shares": {"false": 0.98, "true": 0.02}},
        "current": {"n": 280, "shares": {"false": 0.8, "true": 0.2}}}),
    _row("llama", "completion_tokens", "K-S p_value", 0.61, False, {
        "reference": {"n": 300, "mean": 220.0, "p50": 200.0, "p95": 400.0},
        "current": {"n": 280, "mean": 225.0, "p50": 204.0, "p95": 410.0}}),
    _row("llama", DATASET_FEATURE, SHARE_METHOD, 0.5, True, {
        "status": "ok", "drifted": ["refusal"], "tested": 2, "skipped": {"language": "no values"},
        "parts": {"captured_outputs": {"status": "insufficient_data", "reason": "captured_outputs: none stored"}}}),
    _row("qwen", DATASET_FEATURE, INSUFFICIENT_METHOD, 0.0, False, {
        "status": "insufficient_data", "reason": "request_records: 40 rows in the reference window"}),
]


def _render() -> str:
    console = Console(record=True, width=200)
    render_drift(console, RESULTS)
    return console.export_text()


def test_table_shows_verdicts_and_the_change_behind_them() -> None:
    text = _render()
    refusal = next(line for line in text.splitlines() if "refusal" in line)
    assert "DRIFT" in refusal and "2.0% true -> 20.0% true" in refusal
    tokens = next(line for line in text.splitlines() if "completion_tokens" in line)
    assert " ok " in tokens and "mean 220, p95 400 -> mean 225, p95 410" in tokens
    assert "1 of 2 features drifted (50%" in text
    assert "skipped language: no values" in text
    assert "text drift not tested: captured_outputs: none stored" in text


def test_insufficient_data_is_shown_as_such_with_its_reason() -> None:
    text = _render()
    assert "insufficient data: request_records: 40 rows in the reference window" in text


def test_no_results_says_why() -> None:
    console = Console(record=True, width=120)
    render_drift(console, [])
    assert "no model produced outputs" in console.export_text()


def test_json_output_round_trips_with_parsed_details() -> None:
    data = json.loads(drift_to_json(RESULTS))
    assert [d["feature"] for d in data] == [r.feature for r in RESULTS]
    assert data[0]["details"]["current"]["shares"]["true"] == 0.2
    assert data[0]["ts"] == T0.isoformat() and data[0]["drifted"] is True
