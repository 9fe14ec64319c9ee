"""`campwatch seed-history` writes a simulated history the way the agent would: raw samples, the
store's own rollups, the cost ledger's hourly measures and drift results, all marked simulated,
with settings beside it carrying a GPU price change and a plan that one quarter is over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import main
from agent.config import load_settings
from agent.store.db import open_engine
from agent.store.schema import (
    cost_hours,
    drift_results,
    engine_rollups_1m,
    gpu_rollups_1m,
    gpu_samples,
    request_records,
)
from tests.support.rows import count

pytestmark = pytest.mark.slow


def test_seed_history_writes_rollups_measures_and_a_price_change_over_plan(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    url = f"sqlite:///{db}"
    result = CliRunner().invoke(main, ["seed-history", "--db", url, "--days", "10", "--gpus", "2",
                                       "--end", "2026-10-06"])
    assert result.exit_code == 0, result.output
    engine = open_engine(url)
    assert count(engine, gpu_samples) == count(engine, gpu_rollups_1m) == 10 * 1440 * 2
    assert count(engine, engine_rollups_1m) == 10 * 1440
    assert count(engine, cost_hours) == 10 * 24
    assert count(engine, drift_results) > 0
    for table in (gpu_samples, gpu_rollups_1m, engine_rollups_1m, cost_hours, request_records, drift_results):
        if "simulated" in table.c:
            assert count(engine, table, table.c.simulated.is_(False)) == 0, table.name
    engine.dispose()

    settings_file = db.with_suffix(".toml")
    assert f"settings (prices, plan): {settings_file}" in " ".join(result.output.split())
    settings = load_settings(settings_file)
    from datetime import date
    from decimal import Decimal

    assert settings.cost.pricing.on(date(2026, 9, 30)).gpu_hourly_usd == Decimal("2.50")
    assert settings.cost.pricing.on(date(2026, 10, 1)).gpu_hourly_usd == Decimal("2.10")
    assert [p.quarter for p in settings.cost.plan] == ["2026-Q3", "2026-Q4"]

    cost = CliRunner().invoke(main, ["cost", "--db", url, "--config", str(settings_file), "--from", "2026-09-26",
                                     "--to", "2026-10-06", "--json"])
    assert cost.exit_code == 0, cost.output
    report = json.loads(cost.stdout)
    assert report["total"]["totals"]["simulated"] is True
    ratios = {p["quarter"]: p["cost_ratio"] for p in report["plan"]}
    # the change is halfway (2026-10-01): Q3 billed at $2.50, over its plan (97 % of that), Q4 at $2.10, under
    assert ratios["2026-Q3"] == pytest.approx(1 / 0.97, rel=0.01)
    assert ratios["2026-Q4"] == pytest.approx(2.10 / 2.50 / 0.97, rel=0.01)


def test_seed_history_refuses_a_database_that_already_holds_the_host(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    args = ["seed-history", "--db", url, "--days", "1", "--gpus", "1", "--end", "2026-10-04"]
    assert CliRunner().invoke(main, args).exit_code == 0
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2
    assert "already holds samples of host 'simulated-history'" in again.output
