"""`campwatch gpus` through the real pynvml path (fake library found via LD_LIBRARY_PATH)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.fakenvml import SCENARIOS, build_fake_library


def run_gpus(env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAMPWATCH_", "FAKENVML_"))}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "agent.cli", "gpus"], capture_output=True, text=True, env=env,
                          timeout=60)


def test_gpus_lists_every_gpu_with_its_supported_fields() -> None:
    library = build_fake_library()
    result = run_gpus({"LD_LIBRARY_PATH": str(library.parent), "FAKENVML_SCENARIO": str(SCENARIOS / "a100_mig.scn")})
    assert result.returncode == 0, result.stderr
    assert "A100" in result.stdout and "MIG" in result.stdout.upper()


def test_gpus_without_a_driver_exits_1_with_one_clear_message() -> None:
    result = run_gpus({"LD_LIBRARY_PATH": ""})
    assert result.returncode == 1
    assert "libnvidia-ml.so.1" in result.stderr and "Traceback" not in result.stderr
