"""GPU scoping on the fake NVML library: gpu.devices, NVIDIA_VISIBLE_DEVICES, CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

import pytest

from agent.collectors.gpu.scope import requested_devices
from agent.errors import ConfigError, NvmlUnavailable
from tests.gpu.gpu_helpers import GpuRun, points_named


def uuid(index: int) -> str:
    return f"GPU-00000000-0000-4000-8000-00000000000{index}"


def read_indices(run: GpuRun, **kwargs: object) -> list[int]:
    collector = run.collector("h100_8gpu", **kwargs)  # type: ignore[arg-type]
    out = collector.collect_sync()
    rows = sorted({row.gpu_index for row in out.rows})  # type: ignore[union-attr]
    assert rows == sorted({int(dict(p.labels)["gpu"]) for p in points_named(out, "campwatch_gpu_up")})
    return rows


def test_without_any_setting_every_gpu_is_read(gpu_run: GpuRun) -> None:
    assert read_indices(gpu_run) == list(range(8))
    assert read_indices(gpu_run, environ={"NVIDIA_VISIBLE_DEVICES": "all"}) == list(range(8))


def test_gpu_devices_takes_indices_and_uuids_and_only_those_are_read_and_stored(gpu_run: GpuRun) -> None:
    assert read_indices(gpu_run, devices=("2", uuid(5))) == [2, 5]


def test_gpu_devices_wins_over_the_environment(gpu_run: GpuRun) -> None:
    assert read_indices(gpu_run, devices=("1",), environ={"NVIDIA_VISIBLE_DEVICES": uuid(4)}) == [1]


def test_nvidia_visible_devices_uuids_scope_the_collector(gpu_run: GpuRun) -> None:
    env = {"NVIDIA_VISIBLE_DEVICES": f"{uuid(3)},{uuid(4).lower()}", "CUDA_VISIBLE_DEVICES": "0"}
    assert read_indices(gpu_run, environ=env) == [3, 4]


def test_cuda_visible_devices_applies_when_nvidia_visible_devices_is_unset_or_empty(gpu_run: GpuRun) -> None:
    assert read_indices(gpu_run, environ={"CUDA_VISIBLE_DEVICES": "6"}) == [6]
    assert read_indices(gpu_run, environ={"NVIDIA_VISIBLE_DEVICES": "", "CUDA_VISIBLE_DEVICES": "6,7"}) == [6, 7]


def test_indices_the_container_runtime_already_applied_are_the_gpus_nvml_shows(gpu_run: GpuRun) -> None:
    # NVIDIA_VISIBLE_DEVICES=5,7 inside a container: NVML shows two GPUs, renumbered 0 and 1
    collector = gpu_run.collector("devices = 2\n", environ={"NVIDIA_VISIBLE_DEVICES": "5,7"})
    assert [d.index for d in collector.devices] == [0, 1]


@pytest.mark.parametrize("word", ["none", "void", "NONE"])
def test_none_and_void_read_no_gpu_and_say_so(gpu_run: GpuRun, word: str) -> None:
    with pytest.raises(NvmlUnavailable, match="no GPU is in scope: none \\(NVIDIA_VISIBLE_DEVICES\\)"):
        gpu_run.collector("h100_8gpu", environ={"NVIDIA_VISIBLE_DEVICES": word})


def test_an_id_matching_no_gpu_is_one_error_naming_it_its_source_and_what_nvml_shows(gpu_run: GpuRun) -> None:
    with pytest.raises(ConfigError) as info:
        gpu_run.collector("h100_8gpu", devices=("3", "9", "GPU-nope"))
    problems = info.value.problems
    assert [p.where for p in problems] == ["gpu.devices", "gpu.devices"]
    assert "'9' matches no GPU" in problems[0].message and "'GPU-nope' matches no GPU" in problems[1].message
    assert f"0 {uuid(0)}" in problems[0].message and f"7 {uuid(7)}" in problems[0].message
    assert gpu_run.fake.init_count == 0  # NVML was shut down again


def test_an_unknown_id_from_the_environment_names_the_variable(gpu_run: GpuRun) -> None:
    with pytest.raises(ConfigError, match="CUDA_VISIBLE_DEVICES: 'GPU-gone' matches no GPU"):
        gpu_run.collector("h100_8gpu", environ={"CUDA_VISIBLE_DEVICES": "GPU-gone"})


def test_a_mig_uuid_selects_its_gpu_and_only_that_instance(gpu_run: GpuRun) -> None:
    mig = "MIG-11111111-1111-4111-8111-111111111111"
    collector = gpu_run.collector("a100_mig", environ={"NVIDIA_VISIBLE_DEVICES": mig})
    out = collector.collect_sync()
    assert [d.index for d in collector.devices] == [0]
    used = [dict(p.labels)["mig_uuid"] for p in points_named(out, "campwatch_gpu_mig_memory_used_bytes")]
    assert used == [mig]


def test_an_unknown_mig_uuid_lists_the_mig_instances_nvml_shows(gpu_run: GpuRun) -> None:
    with pytest.raises(ConfigError) as info:
        gpu_run.collector("a100_mig", devices=("MIG-00000000-dead",))
    assert "MIG-11111111-1111-4111-8111-111111111111" in info.value.problems[0].message


def test_the_request_says_where_it_came_from() -> None:
    assert requested_devices((), {}).ids is None
    request = requested_devices((), {"NVIDIA_VISIBLE_DEVICES": " 0, 1 "})
    assert (request.source, request.ids) == ("NVIDIA_VISIBLE_DEVICES", ("0", "1"))
    assert requested_devices((), {"CUDA_VISIBLE_DEVICES": ""}).ids == ()
    assert requested_devices(("GPU-a",), {"NVIDIA_VISIBLE_DEVICES": "all"}).source == "gpu.devices"
