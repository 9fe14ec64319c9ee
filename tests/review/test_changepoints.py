"""Change points come from the data (CUSUM with binary segmentation on hourly descriptor means):
the planted drift event is found within a day of where it was planted, wherever it is, and a
history seeded without one yields none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agent.review import changepoints, frames
from agent.review.drift_review import DESCRIPTORS
from agent.sim.history import HistoryPlan, seed_history
from agent.store.db import open_store

END = datetime(2026, 9, 20, tzinfo=UTC)


def seeded_requests(tmp: Path, drift_last_days: float) -> pd.DataFrame:
    engine = open_store(f"sqlite:///{tmp / f'cp-{drift_last_days}.db'}", upgrade=True)
    seed_history(engine, HistoryPlan(days=8, end=END, request_record_days=8, drift_last_days=drift_last_days,
                                     drift_checks=False))
    requests = frames.requests(engine, since=END - timedelta(days=30), until=END)
    engine.dispose()
    return requests


@pytest.mark.slow
@pytest.mark.parametrize("drift_last_days", [2.0, 5.3])
def test_the_planted_change_is_found_within_a_day(tmp_path: Path, drift_last_days: float) -> None:
    points = changepoints.find_change_points(seeded_requests(tmp_path, drift_last_days), DESCRIPTORS)
    planted = END - timedelta(days=drift_last_days)
    assert {p.feature for p in points} >= {"output_chars", "completion_tokens", "non_ascii_ratio"}
    strongest = max(points, key=lambda p: p.statistic)
    assert abs((strongest.at - planted).total_seconds()) <= 86400
    chars = next(p for p in points if p.feature == "output_chars")
    assert chars.relative_shift == pytest.approx(1.5, abs=0.3)  # 4 -> 5 chars per token, twice the tokens


@pytest.mark.slow
def test_no_change_point_in_a_history_seeded_without_one(tmp_path: Path) -> None:
    assert changepoints.find_change_points(seeded_requests(tmp_path, 0.0), DESCRIPTORS) == []


def test_a_step_in_noise_is_located_and_pure_noise_is_not() -> None:
    rng = np.random.default_rng(3)
    index = pd.date_range("2026-09-01", periods=200, freq="1h", tz="UTC")
    noise = pd.Series(rng.normal(100, 5, 200), index=index)
    assert changepoints.series_change_points("x", noise) == []
    stepped = noise + np.where(np.arange(200) >= 137, 30.0, 0.0)
    [point] = changepoints.series_change_points("x", stepped)
    assert point.at == index[137].to_pydatetime()
    assert point.after_mean - point.before_mean == pytest.approx(30, abs=3)


def test_what_if_sizes_the_fleet_for_the_planned_volume() -> None:
    from agent.review import capacity

    minutes = pd.date_range("2026-09-01", periods=120, freq="1min", tz="UTC")
    gpu = pd.DataFrame({"minute": minutes, "utilization_avg": [0.5] * 120})  # 1 busy GPU-hour in 2 hours
    served = pd.DataFrame({"prompt_tokens": [3000.0] * 120, "generation_tokens": [1000.0] * 120})
    per_busy = capacity.tokens_per_busy_gpu_hour(gpu, served)
    assert per_busy == pytest.approx(480_000)  # 480,000 tokens in 1 busy GPU-hour
    answer = capacity.what_if(1e9, per_busy, 0.6, 2.50)
    # 1e9 tokens / (730 h x 0.6 x 480,000 per busy hour) = 4.756 GPUs -> 5 whole GPUs x 730 h x $2.50 / 1,000 Mtok
    assert answer["gpus_needed"] == pytest.approx(1e9 / (730 * 0.6 * 480_000))
    assert answer["gpus_rounded_up"] == 5
    assert answer["usd_per_mtok"] == pytest.approx(5 * 730 * 2.50 / 1000)
    with pytest.raises(ValueError, match="target utilization"):
        capacity.what_if(1e9, per_busy, 1.5, 2.50)
