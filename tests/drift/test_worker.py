"""The drift worker's child process: once for real (an Evidently import in a spawned child, about
5-10 s here), and cheap failure paths that fail before Evidently loads."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from agent.drift.features import DATASET_FEATURE
from agent.drift.results import latest_results
from agent.drift.worker import DriftWorker
from agent.errors import DriftError
from tests.support.traffic import HOST, NOW, SETTINGS, Traffic


async def test_worker_computes_in_a_child_writes_results_and_leaves_the_loop_free(
        fill: Callable[..., None], engine: Engine, sqlite_url: str, guarded_children: Path) -> None:
    fill(reference=Traffic(), current=Traffic().shifted())
    worker = DriftWorker(sqlite_url, SETTINGS, HOST)
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            await asyncio.sleep(0.05)
            beats += 1

    pulse = asyncio.create_task(heartbeat())
    try:
        results = await worker.tick(now=NOW)
    finally:
        pulse.cancel()
    assert worker.last_error is None, worker.last_error
    assert {r.feature for r in results if r.drifted} >= {"completion_tokens", "refusal", "json_valid"}
    assert latest_results(engine, HOST) == sorted(results, key=lambda r: (r.model, r.feature))
    # the loop kept running while the child imported Evidently and computed (seconds of work)
    assert worker.last_duration_s is not None and beats >= 0.25 * worker.last_duration_s / 0.05
    assert worker.last_peak_rss_bytes is not None and worker.last_peak_rss_bytes > 50 * 2**20
    assert guarded_children.read_text() == ""  # no network attempt in the child, Evidently import included
    assert multiprocessing.active_children() == []


async def test_a_failing_check_is_one_log_line_and_no_results(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    worker = DriftWorker(f"sqlite:///{tmp_path / 'no-tables.db'}", SETTINGS, HOST)
    with caplog.at_level(logging.WARNING, logger="agent.drift.worker"):
        assert await worker.tick(now=NOW) == []
    (record,) = caplog.records
    assert "drift check failed" in record.getMessage() and "no such table" in record.getMessage()
    assert "\n" not in record.getMessage()
    assert worker.last_error is not None and "request_records" in worker.last_error


def test_run_once_raises_the_childs_error(tmp_path: Path) -> None:
    worker = DriftWorker(f"sqlite:///{tmp_path / 'no-tables.db'}", SETTINGS, HOST)
    with pytest.raises(DriftError, match="no such table"):
        worker.run_once(now=NOW)


async def test_a_check_over_its_time_limit_is_killed(fill: Callable[..., None], sqlite_url: str) -> None:
    fill()
    worker = DriftWorker(sqlite_url, SETTINGS, HOST, timeout_s=0.2)
    assert await worker.tick(now=NOW) == []
    assert worker.last_error is not None and "timed out" in worker.last_error
    assert multiprocessing.active_children() == []


async def test_disabled_drift_starts_no_child(sqlite_url: str) -> None:
    worker = DriftWorker(sqlite_url, SETTINGS.model_copy(update={"enabled": False}), HOST)
    assert await worker.tick(now=NOW) == []
    assert worker.last_duration_s is None


async def test_cancelling_a_tick_kills_the_child(fill: Callable[..., None], sqlite_url: str) -> None:
    fill()
    worker = DriftWorker(sqlite_url, SETTINGS, HOST)
    task = asyncio.create_task(worker.tick(now=NOW))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert multiprocessing.active_children() == []


def test_the_childrens_network_guard_catches_an_attempt(guarded_children: Path) -> None:
    """Control for the guard the worker test relies on: a child trying to download is caught."""
    code = ("import socket\n"
            "try:\n    socket.create_connection(('pypi.org', 443), timeout=1)\nexcept OSError:\n    pass\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    assert "getaddrinfo 'pypi.org'" in guarded_children.read_text()


def test_insufficient_data_summary_is_returned_by_the_child(fill: Callable[..., None], sqlite_url: str) -> None:
    fill(n_ref=20, n_cur=20)
    (summary,) = DriftWorker(sqlite_url, SETTINGS, HOST).run_once(now=NOW)
    assert summary.feature == DATASET_FEATURE and not summary.drifted
