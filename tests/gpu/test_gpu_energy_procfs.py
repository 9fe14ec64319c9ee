"""Pure parts of the GPU collector: energy from counter differences, process identity from /proc,
throttle-reason decoding."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from agent.collectors.gpu.energy import EnergyCounter
from agent.collectors.gpu.nvml import mig_profile
from agent.collectors.gpu.procfs import ProcessIdentity, container_id, read_identity
from agent.collectors.gpu.throttle import active_reasons

CID = "0123456789abcdef" * 4


def test_energy_starts_at_zero_and_adds_differences() -> None:
    counter = EnergyCounter()
    assert [counter.update(raw, t) for raw, t in [(5000.0, 0.0), (5300.0, 1.0), (5700.0, 2.0)]] == [0, 300, 700]


def test_a_counter_restart_adds_what_was_used_since_the_restart() -> None:
    counter = EnergyCounter()
    counter.update(9_000_000.0, 0.0)
    assert counter.update(9_000_400.0, 1.0) == 400.0
    assert counter.update(150.0, 2.0) == 550.0  # driver reload: the counter began again at 0


def test_a_jump_too_large_for_the_elapsed_time_is_ignored() -> None:
    counter = EnergyCounter(max_watts=2000.0)
    counter.update(100.0, 0.0)
    assert counter.update(1_000_000.0, 1.0) == 0.0  # 1 MJ in 1 s: a glitch
    assert counter.update(1_000_500.0, 2.0) == 500.0  # rebased on the glitch value, then normal


@given(st.lists(st.tuples(st.floats(0, 1e9), st.floats(0.001, 100)), min_size=1, max_size=60))
def test_energy_never_decreases_and_never_spikes(readings: list[tuple[float, float]]) -> None:
    counter = EnergyCounter(max_watts=3000.0)
    t, previous = 0.0, 0.0
    for raw, elapsed in readings:
        t += elapsed
        total = counter.update(raw, t)
        assert total >= previous
        assert total - previous <= 3000.0 * elapsed + 1e-6
        previous = total


def test_container_ids_are_found_for_the_common_runtimes() -> None:
    cases = {
        f"12:memory:/docker/{CID}\n": CID,
        f"0::/system.slice/docker-{CID}.scope\n": CID,
        f"0::/kubepods.slice/kubepods-pod1a2b.slice/cri-containerd-{CID}.scope\n": CID,
        f"0::/kubepods/besteffort/pod7c1e5d0e-1111-2222-3333-444455556666/crio-{CID}.scope\n": CID,
        f"0::/machine.slice/libpod-{CID}.scope/container\n": CID,
        "0::/user.slice/user-1000.slice/session-2.scope\n": "",
        "": "",
    }
    for text, expected in cases.items():
        assert container_id(text) == expected, text


def test_read_identity_uses_comm_and_cgroup_and_misses_quietly(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "comm").write_text("VLLM::EngineCor\n")
    (tmp_path / "42" / "cgroup").write_text(f"0::/system.slice/docker-{CID}.scope\n")
    (tmp_path / "43").mkdir()
    (tmp_path / "43" / "comm").write_text("python3\n")
    assert read_identity(tmp_path, 42) == ProcessIdentity("VLLM::EngineCor", CID)
    assert read_identity(tmp_path, 43) == ProcessIdentity("python3", "")
    assert read_identity(tmp_path, 44) is None


def test_throttle_bits_decode_to_reason_names() -> None:
    assert active_reasons(0) == ()
    assert active_reasons(0x4 | 0x40 | 0x8) == ("sw_power_cap", "hw_slowdown", "hw_thermal")


def test_mig_profile_is_taken_from_the_instance_name() -> None:
    assert mig_profile("NVIDIA A100-SXM4-40GB MIG 3g.20gb") == "3g.20gb"
    assert mig_profile("NVIDIA H100 80GB HBM3 MIG 1g.10gb+me") == "1g.10gb+me"
    assert mig_profile("odd name") == "odd name"
