"""The review notebooks run top to bottom in a real Jupyter kernel against a store holding a
simulated history, and show what a reviewer needs (tables, figures, the verdict)."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from agent.sim.history import HistoryPlan, seed_history
from agent.store.db import open_engine, open_store

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
END = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)

pytestmark = pytest.mark.slow
SEEDED: dict[str, int] = {}


@dataclass(frozen=True)
class Review:
    url: str
    config: str


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def review_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Review:
    """20 days of simulated history, on SQLite and on the real PostgreSQL (a fresh database)."""
    folder = tmp_path_factory.mktemp("review")
    url = (f"sqlite:///{folder / 'history.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_module_url"))
    engine = open_store(url, upgrade=True)
    SEEDED.clear()
    SEEDED.update(seed_history(engine, HistoryPlan(days=20, end=END, request_record_days=10)))
    engine.dispose()
    config = folder / "history.toml"
    config.write_text('[cost]\noverhead_usd_per_month = 500\n[[cost.plan]]\nquarter = "2026-Q4"\n'
                      'tokens_per_month = 3000000000\ncost_per_month_usd = 2000\n'
                      '[[cost.plan]]\nquarter = "2027-Q1"\ntokens_per_month = 6000000000\ncost_per_month_usd = 4000\n')
    return Review(url, str(config))


def run(name: str, env: dict[str, str]) -> nbformat.NotebookNode:
    book: nbformat.NotebookNode = nbformat.read(NOTEBOOKS / name, as_version=4)  # type: ignore[no-untyped-call]
    old = dict(os.environ)
    os.environ.update(env)
    try:
        NotebookClient(book, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return book


def outputs(book: nbformat.NotebookNode) -> tuple[str, int]:
    text, images = [], 0
    for cell in book.cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text", ""))
            data = out.get("data", {})
            text.append(data.get("text/plain", ""))
            text.append(data.get("text/html", ""))
            images += "image/png" in data
    return "\n".join(text), images


def test_quarterly_review_shows_plan_months_baselines_and_verdict(review_db: Review) -> None:
    book = run("quarterly_cost_review.ipynb", {"REVIEW_DB": review_db.url, "CAMPWATCH_CONFIG": review_db.config,
                                               "REVIEW_QUARTER": "2026-Q4"})
    text, images = outputs(book)
    assert "2026-Q4" in text and "(simulated data)" in text
    assert "mtok_per_month_plan" in text and "3000.0" in text  # the plan, in Mtok per month
    assert "2026-10" in text and "2026-11" in text  # the months of the quarter measured
    assert "openai/gpt-4o" in text and "deepseek/deepseek-chat" in text
    assert "[holds]" in text or "[api_cheaper]" in text or "[at_risk]" in text
    assert images == 2


def test_gpu_capacity_review_counts_the_seeded_gpu_minutes_and_tokens(review_db: Review) -> None:
    book = run("gpu_capacity.ipynb", {"REVIEW_DB": review_db.url, "REVIEW_QUARTER": "2026-Q4",
                                      "REVIEW_NOW": END.isoformat(), "CAMPWATCH_CONFIG": review_db.config})
    text, images = outputs(book)
    # 20 days x 1440 minutes x 1 GPU, all inside 2026-Q4: every seeded GPU-minute, rolled up by the store
    assert SEEDED["gpu_samples"] == 20 * 1440
    assert f"{20 * 1440:,} GPU-minutes, {20 * 1440:,} engine-minutes" in text
    assert "(simulated data)" in text
    found = re.search(r"([\d,.]+) M tokens over ([\d,.]+) GPU-hours: ([\d,]+) tokens per GPU-hour", text)
    assert found, text
    mtok, gpu_hours = float(found.group(1).replace(",", "")), float(found.group(2).replace(",", ""))
    assert gpu_hours == pytest.approx(20 * 24)
    # the first minute's increase has no earlier reading to count from: at most one minute's tokens short
    assert mtok == pytest.approx(SEEDED["tokens"] / 1e6, rel=1e-3)
    # what-if for the next quarter's plan (6,000 Mtok/month) at 60 % utilization, $2.50 per GPU-hour
    per_busy = float(re.search(r"([\d,]+) tokens per busy GPU-hour", text).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert per_busy > float(found.group(3).replace(",", ""))  # busy hours are fewer than held hours
    sized = re.search(r"2027-Q1 plan: 6,000 Mtok/month needs ([\d.]+) GPUs at 60% utilization "
                      r"\((\d+) whole GPUs, \$([\d.]+)/Mtok of GPU rent at \$2.50/h\)", text)
    assert sized, text
    assert float(sized.group(1)) == pytest.approx(6e9 / (730 * 0.6 * per_busy), abs=0.06)
    assert int(sized.group(2)) == math.ceil(float(sized.group(1)))
    assert float(sized.group(3)) == pytest.approx(int(sized.group(2)) * 730 * 2.50 / 6000, abs=0.001)
    assert images == 1


def test_drift_investigation_finds_the_shift_in_the_simulated_history(review_db: Review) -> None:
    from agent.config import DriftSettings
    from agent.drift.check import run_drift_check

    engine = open_engine(review_db.url)
    stored = run_drift_check(engine, DriftSettings(), "simulated-history", now=END)
    engine.dispose()
    assert any(r.drifted for r in stored if r.feature == "output_chars")
    book = run("drift_investigation.ipynb", {"REVIEW_DB": review_db.url, "REVIEW_HOST": "simulated-history",
                                             "REVIEW_QUARTER": "2026-Q4", "REVIEW_NOW": END.isoformat()})
    text, images = outputs(book)
    assert "output_chars" in text and "share_drifted" in text
    assert "drifted now:" in text and "'output_chars')" in text  # the live check agrees
    # the change point is found from the data, within a day of where it was planted (2 days before END)
    found = re.search(r"change point found: (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", text)
    assert found, text
    at = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert abs((at - (END - timedelta(days=2))).total_seconds()) <= 86400
    assert "before" in text and "after" in text
    # reference against current: the latest stored check's windows, per descriptor
    assert re.search(r"reference \d{4}-\d\d-\d\d \d\d:\d\d to .* UTC \(the drift check stored at", text), text
    # retained outputs are shown redacted only, from both sides of the change
    assert "[EMAIL]" in text and "[PHONE]" in text and "support@example.com" not in text
    assert "Réponse simulée" in text and "Simulated answer" in text
    assert images == 3  # the timeline per descriptor, reference against current, the strongest change


def test_drift_investigation_finds_no_change_in_a_history_seeded_without_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'steady.db'}"
    engine = open_store(url, upgrade=True)
    seed_history(engine, HistoryPlan(days=8, end=END, request_record_days=8, drift_last_days=0, drift_checks=False))
    engine.dispose()
    book = run("drift_investigation.ipynb", {"REVIEW_DB": url, "REVIEW_QUARTER": "2026-Q4",
                                             "REVIEW_NOW": END.isoformat()})
    text, images = outputs(book)
    assert "no change point found in the descriptors" in text and "change point found: 20" not in text
    assert "no drift check stored and no change point found: nothing to compare" in text
    assert "Simulated answer" in text and "Réponse simulée" not in text  # the latest retained outputs
    assert images == 1  # the timeline alone
