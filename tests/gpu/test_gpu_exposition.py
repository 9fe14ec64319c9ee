"""GPU points render through the Prometheus exporter with the catalog's names, types and labels."""

from __future__ import annotations

from prometheus_client import generate_latest

from agent.catalog import CATALOG
from agent.exporters.prometheus import build_registry
from agent.exporters.snapshot import Snapshot
from tests.gpu.gpu_helpers import GpuRun


def test_failing_gpu_scenario_renders_up_xid_counters_and_gaps(gpu_run: GpuRun) -> None:
    collector = gpu_run.collector("failing_gpu")
    out = gpu_run.cycles(collector, 3)[-1]
    snapshot = Snapshot()
    snapshot.replace(out.source, out.points)
    text = generate_latest(build_registry(snapshot, CATALOG)).decode()
    gpu1 = 'gpu="1",host="node-a",model="NVIDIA H100 80GB HBM3",pci_bus_id="00000000:28:00.0"'
    assert f'campwatch_gpu_up{{{gpu1},uuid="GPU-00000000-0000-4000-8000-000000000001"}} 0.0' in text
    assert f'campwatch_gpu_xid_errors_total{{{gpu1},uuid="GPU-00000000-0000-4000-8000-000000000001",xid="79"}} 1.0' \
        in text
    assert "# TYPE campwatch_gpu_energy_joules_total counter" in text
    assert "# TYPE campwatch_gpu_throttle_active gauge" in text
    assert 'campwatch_gpu_power_watts{gpu="1"' not in text
