"""`make bench`: every benchmark in turn, each printing its figures against a baseline measured in
the same run. Results are recorded by hand in docs/benchmarks.md with the command that made them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES: list[list[str]] = [
    ["bench_gpu.py"], ["bench_engine.py"],
    # the proxy as inside `campwatch run` (records through a real StoreWriter), with a 1 ms GIL switch
    # interval as a second campwatch variant in the same rounds (issue 14: the p99 under the flush)
    ["bench_proxy.py", "--store", "--variant", "si1ms:CAMPWATCH_SWITCH_INTERVAL_S=0.001"],
    ["bench_store.py"], ["bench_store_queue.py"], ["bench_cost.py"], ["bench_drift.py"],
    ["bench_hostile_pages.py"], ["bench_shutdown.py"], ["bench_memory.py", "--by-module"],
]


def main() -> int:
    failed = []
    for name, *args in BENCHES:
        print(f"\n===== {name} {' '.join(args)} =====", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(HERE / name), *args], cwd=HERE.parent)
        print(f"----- {name}: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
