"""Fixtures for the GPU collector tests: the fake NVML library, a controllable clock, a runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gpu.gpu_helpers import FakeClock, FakeNvml, GpuRun


@pytest.fixture(scope="session")
def fake_nvml_library() -> FakeNvml:
    fake = FakeNvml.install()
    fake.disarm()
    return fake


@pytest.fixture
def fake_nvml(fake_nvml_library: FakeNvml) -> Iterator[FakeNvml]:
    """The fake, playing one default H100 (load another scenario at will); outside these tests it
    answers like a host without NVIDIA driver, since it stays loaded in the process."""
    fake_nvml_library.reset()
    yield fake_nvml_library
    fake_nvml_library.disarm()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def proc_root(tmp_path: Path) -> Path:
    """An empty /proc, so pids of the machine running the tests never leak into labels."""
    root = tmp_path / "proc"
    root.mkdir()
    return root


@pytest.fixture
def gpu_run(fake_nvml: FakeNvml, clock: FakeClock, proc_root: Path, tmp_path: Path) -> Iterator[GpuRun]:
    run = GpuRun(fake_nvml, clock, proc_root, tmp_path)
    yield run
    run.close()
