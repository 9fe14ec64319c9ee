"""`campwatch seed-history` writes a simulated history the way the agent would: raw samples, the
store's own rollups, the cost ledger's hourly measures and drift results, all marked simulated,
with settings beside it carrying a GPU price change and a plan that one quarter is over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

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


def test_the_bulk_rollups_equal_the_stores_own_rollup_of_the_raw_rows(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import delete

    from agent.sim.history import HistoryPlan, seed_history
    from agent.store.maintenance import roll_up
    from agent.store.migrate import upgrade
    from agent.store.schema import rollup_state

    engine = open_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    end = datetime(2026, 10, 3, tzinfo=UTC)
    seed_history(engine, HistoryPlan(days=2, gpus=2, end=end, request_record_days=1, drift_checks=False))

    def rollups() -> dict[str, list[tuple[object, ...]]]:
        with engine.connect() as conn:
            return {t.name: sorted(tuple(r)[1:] for r in conn.execute(select(t))) for t in (gpu_rollups_1m,
                                                                                             engine_rollups_1m)}

    seeded = rollups()
    assert len(seeded["gpu_rollups_1m"]) == 2 * 2 * 1440 and len(seeded["engine_rollups_1m"]) == 2 * 1440
    with engine.begin() as conn:
        for table in (gpu_rollups_1m, engine_rollups_1m, rollup_state):
            conn.execute(delete(table))
    assert roll_up(engine, "simulated-history", now=end) == (2 * 1440, 2 * 1440)
    assert rollups() == seeded  # value for value, the first minute's missing energy base included
    engine.dispose()


def test_the_bulk_engine_rows_are_the_row_mappings_and_the_load_shape_is_unchanged() -> None:
    from datetime import UTC, datetime, timedelta

    import numpy as np
    import pandas as pd

    from agent.samples import EngineSample, HistogramSnapshot
    from agent.sim import history
    from agent.store.rows import to_row

    bounds = (1.0, 2.0, 5.0)
    prompt = np.array([[1.0, 3.0, 3.0, 4.0], [0.0, 0.0, 2.0, 1e17]])
    [text, big] = history._histogram_json(bounds, prompt, np.array([12.5, 3e17]), prompt[::-1], np.array([7.0, 0.1]))

    def snapshot(counts: np.ndarray, total: float) -> HistogramSnapshot:
        return HistogramSnapshot(tuple(zip((*bounds, float("inf")), counts.tolist(), strict=True)), total,
                                 float(counts[-1]))

    for json_text, i, j, sums in ((text, 0, 1, (12.5, 7.0)), (big, 1, 0, (3e17, 0.1))):
        sample = EngineSample(ts=datetime(2026, 10, 1, tzinfo=UTC), host="h", server="s", kind="vllm", model="m",
                              engine="0", up=True, values={}, histograms={
                                  "request_prompt_tokens": snapshot(prompt[i], sums[0]),
                                  "request_generation_tokens": snapshot(prompt[j], sums[1])})
        assert json_text == to_row(sample)[1]["histograms"]

    plan = history.HistoryPlan(days=30)
    start = datetime(2026, 9, 5, 3, 0, tzinfo=UTC)
    minutes = pd.date_range(start, start + timedelta(days=9), freq="37min")
    assert history._loads(minutes, start, plan).tolist() == pytest.approx(
        [history._load(m.to_pydatetime(), start, plan) for m in minutes], rel=1e-12)


def test_demo_history_seeds_the_quarter_then_runs_the_demo(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPWATCH_")}
    result = subprocess.run([sys.executable, "-m", "agent.cli", "demo", "--history", "1d", "--duration", "4",
                             "--quiet", "--metrics-port", "0", "--db", url], capture_output=True, text=True, env=env,
                            timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "campwatch demo summary (simulated)" in result.stdout and "next: campwatch review" in result.stdout
    engine = open_engine(url)
    with engine.connect() as conn:
        per_host = select(gpu_samples.c.host, func.count()).group_by(gpu_samples.c.host)
        hosts: dict[str, int] = dict(conn.execute(per_host).all())
    engine.dispose()
    assert hosts.pop("simulated-history") == 1440 * 8  # one day of the 8-GPU history, then the live demo's own
    assert sum(hosts.values()) > 0


def test_a_bad_history_length_is_one_config_error() -> None:
    result = CliRunner().invoke(main, ["demo", "--history", "a quarter"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "--history: expected a number of days like 90d (1 to 400), got 'a quarter'" in message
