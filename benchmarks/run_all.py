"""`make bench`: every benchmark in turn, each printing its figures against a baseline measured in
the same run. Results are recorded by hand in docs/benchmarks.md with the command that made them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHES: list[list[str]] = [
    ["bench_gpu"], ["bench_gpm"], ["bench_engine"],
    # the proxy as inside `campwatch run` (records through a real StoreWriter), with a 1 ms GIL switch
    # interval as a second campwatch variant in the same rounds (issue 14: the p99 under the flush)
    ["bench_proxy", "--store", "--variant", "si1ms:CAMPWATCH_SWITCH_INTERVAL_S=0.001"],
    ["bench_store"], ["bench_store_queue"], ["bench_cost"], ["bench_drift"],
    ["bench_hostile_pages"], ["bench_shutdown"], ["bench_memory", "--by-module"], ["bench_peers"],
]
"""bench_peers runs last: it makes .venv-peers (LiteLLM, nvitop-exporter) once and prints "peers skipped: <why>"
with exit 0 where it cannot, so a machine without a package index still runs the rest."""


def main() -> int:
    failed = []
    for name, *args in BENCHES:
        print(f"\n===== {name} {' '.join(args)} =====", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=ROOT)
        print(f"----- {name}: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
