"""`make bench`: every benchmark in turn, each printing its figures against a baseline measured in
the same run. Results are recorded by hand in docs/benchmarks.md with the command that made them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["bench_gpu.py", "bench_gpm.py", "bench_engine.py", "bench_proxy.py", "bench_store.py",
           "bench_store_queue.py", "bench_cost.py", "bench_drift.py", "bench_hostile_pages.py", "bench_shutdown.py",
           "bench_memory.py"]


def main() -> int:
    failed = []
    for name in BENCHES:
        print(f"\n===== {name} =====", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(HERE / name)], cwd=HERE.parent)
        print(f"----- {name}: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
