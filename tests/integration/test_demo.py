"""`campwatch demo` (what `make demo` runs), shortened: the whole stack runs and everything it stores
is marked simulated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from agent.store.db import open_engine
from agent.store.schema import engine_samples, gpu_samples, request_records


def test_demo_runs_end_to_end_and_labels_everything_simulated(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPWATCH_")}
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "demo", "--duration", "12", "--quiet", "--metrics-port", "0",
         "--db", f"sqlite:///{db}"], capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for needle in ("campwatch demo summary (simulated)", "tokens served", "GPU utilization", "rows stored",
                   "Output drift", "Camp verdict", "openai/gpt-4o", "Splitwise"):
        assert needle in out, needle
    engine = open_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        gpus = conn.execute(select(gpu_samples.c.simulated, gpu_samples.c.model)).all()
        engines = conn.execute(select(engine_samples.c.simulated)).scalars().all()
        requests = conn.execute(select(request_records.c.simulated, request_records.c.status)).all()
    engine.dispose()
    assert gpus and all(simulated and "Simulated" in model for simulated, model in gpus)
    assert engines and all(engines)
    assert requests and all(simulated for simulated, _ in requests)
    assert all(status == 200 for _, status in requests)
