"""Drift checks through Evidently in this process, under a guard that fails any network use.

One module-scoped run covers the main scenarios (each text check costs Evidently's 1,000-fold
bootstrap, about 2-3 s): per model, the same reference traffic and
- steady:   the current window drawn from the same distribution, texts from the same vocabulary
- shifted:  longer outputs, 10x refusal rate, JSON validity 97 % -> 60 % (no texts captured)
- reworded: same request descriptors, captured texts on another topic (vocabulary shift)"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from agent.drift import check
from agent.drift.check import DEFAULT_REFUSAL_PHRASES, run_drift_check
from agent.drift.features import (
    DATASET_FEATURE,
    INSUFFICIENT_METHOD,
    RECORD_FEATURES,
    SHARE_METHOD,
    TEXT_CONTENT_FEATURE,
    TEXT_FEATURES,
)
from agent.drift.results import latest_results
from agent.errors import DriftError
from agent.samples import DriftResult
from agent.store.db import open_engine
from agent.store.rows import insert_rows
from agent.store.schema import metadata
from tests.drift.conftest import details, network_guard
from tests.support.traffic import HOST, NOW, SETTINGS, TOPIC_A, TOPIC_B, Traffic, make_records, make_texts

SHIFTED_FEATURES = {"completion_tokens", "output_chars", "refusal", "json_valid"}
RECORD_TESTED = {f.name for f in RECORD_FEATURES}
TEXT_TESTED = {f.name for f in TEXT_FEATURES} | {TEXT_CONTENT_FEATURE}
CUR_START = NOW - timedelta(hours=SETTINGS.current_hours)
REF_START = CUR_START - timedelta(days=SETTINGS.reference_days)

Scenario = dict[str, dict[str, DriftResult]]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, list[DriftResult], list[str]]]:
    path: Path = tmp_path_factory.mktemp("drift") / "campwatch.db"
    engine = open_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    rows: list[Any] = []
    for i, (model, current) in enumerate((("steady", Traffic()), ("shifted", Traffic().shifted()),
                                          ("reworded", Traffic()))):
        rows += make_records(300, REF_START, CUR_START, Traffic(), seed=10 * i + 1, model=model)
        rows += make_records(300, CUR_START, NOW, current, seed=10 * i + 2, model=model)
    rows += make_texts(150, REF_START, CUR_START, TOPIC_A + TOPIC_B, seed=3, model="steady")
    rows += make_texts(150, CUR_START, NOW, TOPIC_A + TOPIC_B, seed=4, model="steady")
    rows += make_texts(150, REF_START, CUR_START, TOPIC_A, seed=5, model="reworded")
    rows += make_texts(150, CUR_START, NOW, TOPIC_B, seed=6, model="reworded")
    insert_rows(engine, rows)
    with network_guard() as attempts:
        results = run_drift_check(engine, SETTINGS, HOST, now=NOW)
    yield engine, results, attempts
    engine.dispose()


@pytest.fixture(scope="module")
def by_model(scenario: tuple[Engine, list[DriftResult], list[str]]) -> Scenario:
    out: Scenario = {}
    for r in scenario[1]:
        out.setdefault(r.model, {})[r.feature] = r
    return out


def _drifted(results: dict[str, DriftResult]) -> set[str]:
    return {name for name, r in results.items() if r.drifted and name != DATASET_FEATURE}


def test_the_checks_made_no_network_attempt(scenario: tuple[Engine, list[DriftResult], list[str]]) -> None:
    assert scenario[2] == []


def test_the_guard_catches_a_download_attempt() -> None:
    """Control for the test above: the guard does see a library reaching out."""
    import urllib.request

    with network_guard() as attempts, pytest.raises(OSError):
        urllib.request.urlopen("https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/index.xml", timeout=1)
    assert attempts and "raw.githubusercontent.com" in attempts[0]


def test_same_distribution_shows_no_drift(by_model: Scenario) -> None:
    steady = by_model["steady"]
    assert set(steady) == RECORD_TESTED | TEXT_TESTED | {DATASET_FEATURE}
    assert _drifted(steady) == set()
    summary = steady[DATASET_FEATURE]
    assert (summary.method, summary.score, summary.drifted) == (SHARE_METHOD, 0.0, False)
    assert details(summary)["skipped"] == {}  # every feature has values here (there is no language feature)
    assert 0.3 < steady[TEXT_CONTENT_FEATURE].score < 0.7  # ROC AUC: the two windows are indistinguishable


def test_shifted_outputs_drift_on_exactly_the_shifted_features(by_model: Scenario) -> None:
    shifted = by_model["shifted"]
    assert _drifted(shifted) == SHIFTED_FEATURES
    refusal = details(shifted["refusal"])
    assert refusal["current"]["shares"]["true"] > 5 * refusal["reference"]["shares"]["true"]
    assert shifted["completion_tokens"].method == "K-S p_value"  # Evidently's choice up to 1,000 rows
    summary = shifted[DATASET_FEATURE]
    assert summary.score == pytest.approx(len(SHIFTED_FEATURES) / len(RECORD_TESTED))
    assert set(details(summary)["drifted"]) == SHIFTED_FEATURES


def test_without_captured_texts_only_records_are_tested(by_model: Scenario) -> None:
    shifted = by_model["shifted"]
    assert not TEXT_TESTED & set(shifted)
    part = details(shifted[DATASET_FEATURE])["parts"]["captured_outputs"]
    assert part["status"] == "insufficient_data" and "none stored" in part["reason"]


def test_vocabulary_shift_in_captured_texts_is_text_content_drift(by_model: Scenario) -> None:
    reworded = by_model["reworded"]
    content = reworded[TEXT_CONTENT_FEATURE]
    assert content.drifted and content.score > 0.9
    assert content.method == "Percentile text content drift"
    assert not reworded["text_refusal"].drifted and not reworded["text_sentences"].drifted
    assert _drifted(reworded) & RECORD_TESTED == set()


def test_every_row_of_a_run_shares_its_time_and_windows(scenario: tuple[Engine, list[DriftResult], list[str]]) -> None:
    results = scenario[1]
    assert {(r.ts, r.window_start, r.window_end, r.reference_start, r.reference_end) for r in results} == {
        (NOW, CUR_START, NOW, REF_START, CUR_START)}


def test_results_are_written_and_read_back_as_the_latest_run(
        scenario: tuple[Engine, list[DriftResult], list[str]]) -> None:
    engine, results, _ = scenario
    assert latest_results(engine, HOST) == sorted(results, key=lambda r: (r.model, r.feature))


@pytest.mark.parametrize(("n_ref", "n_cur"), [(40, 300), (300, 99)])
def test_too_few_rows_on_either_side_is_insufficient_data_not_drift(
        fill: Callable[..., None], engine: Engine, n_ref: int, n_cur: int) -> None:
    fill(reference=Traffic(), current=Traffic().shifted(), n_ref=n_ref, n_cur=n_cur)
    results = run_drift_check(engine, SETTINGS, HOST, now=NOW)
    assert len(results) == 1
    (summary,) = results
    assert (summary.feature, summary.method, summary.drifted) == (DATASET_FEATURE, INSUFFICIENT_METHOD, False)
    assert (summary.n_reference, summary.n_current) == (n_ref, n_cur)
    reason = details(summary)["reason"]
    assert f"{n_ref} rows in the reference window and {n_cur} in the current window, 100 needed" in reason
    assert latest_results(engine, HOST) == results


def test_no_traffic_means_no_results_and_nothing_written(engine: Engine) -> None:
    assert run_drift_check(engine, SETTINGS, HOST, now=NOW) == []
    assert latest_results(engine, HOST) == []


def test_one_model_can_be_checked_alone_without_writing(fill: Callable[..., None], engine: Engine) -> None:
    fill(model="qwen", n_ref=40, n_cur=40)
    fill(model="llama", n_ref=40, n_cur=40)
    results = run_drift_check(engine, SETTINGS, HOST, model="qwen", now=NOW, write=False)
    assert {r.model for r in results} == {"qwen"}
    assert latest_results(engine, HOST) == []


def test_a_failing_model_does_not_cost_the_others_their_check(
        fill: Callable[..., None], engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(model="bad", n_ref=40, n_cur=40)
    fill(model="good", n_ref=40, n_cur=40)
    real = check.check_model

    def flaky(engine: Engine, settings: Any, host: str, model: str, *args: Any) -> list[DriftResult]:
        if model == "bad":
            raise ValueError("Evidently choked\non this model's data")
        return real(engine, settings, host, model, *args)

    monkeypatch.setattr(check, "check_model", flaky)
    with pytest.raises(DriftError, match=r"failed for 1 of 2 model\(s\) \(bad: ValueError: Evidently choked\)"):
        run_drift_check(engine, SETTINGS, HOST, now=NOW)
    assert {r.model for r in latest_results(engine, HOST)} == {"good"}


def test_refusal_pattern_matches_the_proxys_phrases_near_the_start_only() -> None:
    from agent.capture.descriptors import REFUSAL_WINDOW_CHARS, matches_refusal
    from agent.drift.compute import refusal_pattern

    pattern = re.compile(refusal_pattern(DEFAULT_REFUSAL_PHRASES))  # Evidently's RegExp uses re.search
    texts = [
        "I\u2019m sorry, but I can't share that.\nAnything else?",
        "Sure. " * 3 + "As an AI, I have no opinions.",
        "x" * 500 + " as an AI model",
        "x" * (REFUSAL_WINDOW_CHARS - len("as an ai")) + "as an ai",
        "x" * (REFUSAL_WINDOW_CHARS - len("as an ai") + 1) + "as an ai",
        "Here is the recipe you asked for.",
    ]
    assert [bool(pattern.search(t)) for t in texts] == [True, True, False, True, False, False]
    assert [bool(pattern.search(t)) for t in texts] == [matches_refusal(t, DEFAULT_REFUSAL_PHRASES) for t in texts]
    assert not re.compile(refusal_pattern([])).search("anything")
