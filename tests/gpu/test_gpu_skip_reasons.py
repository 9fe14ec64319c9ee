"""Why a GPU field is skipped ("not supported" or "no permission") is decided in one place
(agent.collectors.gpu.driver.reason) for every driver call the collector makes."""

from __future__ import annotations

import logging

import pytest

from agent.collectors.gpu.collector import GpuCollector
from agent.collectors.gpu.driver import MigDevice, Reading, reason
from agent.collectors.gpu.fields import load_fields
from agent.errors import NoPermission, NotSupported
from agent.sim.gpu import SimulatedGpu

MIG_FIELDS = ("mig_memory_used_bytes", "mig_memory_total_bytes", "mig_utilization_ratio")


class _MigNoPermission(SimulatedGpu):
    """A simulated GPU with one MIG instance whose readings need privileges the agent lacks."""

    def mig_devices(self, index: int) -> tuple[MigDevice, ...]:
        return (MigDevice(0, "MIG-0000", "1g.10gb", 1, 0),)

    def mig_reader(self, index: int, slot: int, reading: str) -> Reading:
        raise NoPermission(f"GPU {index} MIG slot {slot} {reading}: Insufficient Permissions")


def test_a_mig_instance_reading_refused_for_permission_is_logged_and_listed_as_no_permission(
        caplog: pytest.LogCaptureFixture) -> None:
    driver = _MigNoPermission(count=1)
    collector = GpuCollector(driver, driver.devices(), load_fields(None), host="node-a")
    with caplog.at_level(logging.INFO, logger="agent.collectors.gpu.collector"):
        collector.collect_sync()
        collector.collect_sync()
    skipped = collector.unsupported_fields(0)
    assert {f: skipped.get(f) for f in MIG_FIELDS} == dict.fromkeys(MIG_FIELDS, "no permission")
    lines = [r for r in caplog.records if "MIG slot" in r.getMessage()]
    # one warning per refused reading (memory, utilization), not repeated by the second cycle
    assert [r.levelno for r in lines] == [logging.WARNING, logging.WARNING]
    assert all("needs privileges the agent lacks" in r.getMessage() for r in lines)
    assert not any("not supported" in r.getMessage() for r in lines)


@pytest.mark.parametrize(("error", "expected"), [
    (NoPermission("x"), "no permission"),
    (NotSupported("x"), "not supported"),
    (None, "not supported"),  # the device returned no value
])
def test_the_skip_reason_follows_the_driver_error(error: NotSupported | NoPermission | None, expected: str) -> None:
    assert reason(error) == expected

