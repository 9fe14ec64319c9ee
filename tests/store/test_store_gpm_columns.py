"""Migration 0007: GPM activity columns on gpu_samples (NULL for rows stored before it and for GPUs
without GPM, never 0)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, text

from agent.samples import GpuSample
from agent.store.db import open_engine
from agent.store.maintenance import roll_up
from agent.store.migrate import head_revision, upgrade
from agent.store.rows import insert_rows
from agent.store.schema import gpu_rollups_1m, gpu_samples
from tests.support.rows import T0

GPM_COLUMNS = ("sm_active_ratio", "sm_occupancy_ratio", "tensor_active_ratio", "dram_bandwidth_ratio",
               "nvlink_tx_bytes_per_second", "nvlink_rx_bytes_per_second")


def test_upgrading_a_0005_database_adds_the_gpm_columns_and_keeps_its_rows_with_null(db_url: str) -> None:
    engine = open_engine(db_url)
    assert upgrade(engine, "0005") == "0005"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO gpu_samples (ts, host, gpu_index, uuid, model, up, simulated, "
                          "utilization_ratio) VALUES (:ts, 'h1', 0, 'GPU-0', 'A100', :up, :sim, 0.9)"),
                     {"ts": T0, "up": True, "sim": False})
    assert upgrade(engine) == head_revision()
    columns = {c["name"] for c in inspect(engine).get_columns("gpu_samples")}
    assert set(GPM_COLUMNS) <= columns
    with engine.connect() as conn:
        row = conn.execute(select(gpu_samples)).mappings().one()
    assert row["utilization_ratio"] == 0.9
    assert [row[name] for name in GPM_COLUMNS] == [None] * len(GPM_COLUMNS)
    engine.dispose()


def test_gpm_values_are_stored_and_a_gpu_without_gpm_stores_null(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    upgrade(engine)
    hopper = GpuSample(T0, "h1", 0, "GPU-0", "H100", True, {"utilization_ratio": 0.97, "sm_active_ratio": 0.8,
                                                            "tensor_active_ratio": 0.52,
                                                            "nvlink_tx_bytes_per_second": 2.5e10})
    ampere = GpuSample(T0, "h1", 1, "GPU-1", "A100", True, {"utilization_ratio": 0.95})
    insert_rows(engine, [hopper, ampere])
    with engine.connect() as conn:
        rows = conn.execute(select(gpu_samples).order_by(gpu_samples.c.gpu_index)).mappings().all()
    assert (rows[0]["sm_active_ratio"], rows[0]["tensor_active_ratio"], rows[0]["nvlink_tx_bytes_per_second"]) == \
        (0.8, 0.52, 2.5e10)
    assert rows[0]["dram_bandwidth_ratio"] is None
    assert [rows[1][name] for name in GPM_COLUMNS] == [None] * len(GPM_COLUMNS)
    engine.dispose()


def test_the_minute_rollup_keeps_the_gpm_means_and_null_without_gpm(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    upgrade(engine)
    samples = [GpuSample(T0 + timedelta(seconds=s), "h1", 0, "GPU-0", "H100", True,
                         {"utilization_ratio": 0.97, "sm_active_ratio": active, "tensor_active_ratio": 0.5,
                          "dram_bandwidth_ratio": 0.9})
               for s, active in ((0, 0.6), (20, 0.7), (40, 0.8))]
    samples += [GpuSample(T0 + timedelta(seconds=s), "h1", 1, "GPU-1", "A100", True, {"utilization_ratio": 0.9})
                for s in (0, 30)]
    insert_rows(engine, samples)
    roll_up(engine, "h1", now=T0 + timedelta(minutes=5))
    with engine.connect() as conn:
        rows = {r["uuid"]: r for r in conn.execute(select(gpu_rollups_1m)).mappings()}
    assert rows["GPU-0"]["sm_active_avg"] == pytest.approx(0.7)
    assert (rows["GPU-0"]["tensor_active_avg"], rows["GPU-0"]["dram_bandwidth_avg"]) == (0.5, 0.9)
    assert rows["GPU-0"]["utilization_avg"] == pytest.approx(0.97)
    assert (rows["GPU-1"]["sm_active_avg"], rows["GPU-1"]["tensor_active_avg"]) == (None, None)
    engine.dispose()
