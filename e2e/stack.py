"""The end-to-end stack: the real vLLM (CPU build) serving the tiny model, and `campwatch run`
scraping it with the capture proxy in front. Plain subprocesses on 127.0.0.1 with free ports;
each one's output goes to a log file under the work folder, which the suite prints on failure."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "campwatch-e2e/tiny-llama"

VLLM_ENV = {"VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind",
            "OMP_NUM_THREADS": "1",
            "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
VLLM_FLAGS = ("--dtype", "bfloat16", "--enforce-eager", "--max-model-len", "1024",
              "--num-gpu-blocks-override", "64", "--max-num-seqs", "4", "--seed", "0")
"""The settings that work on this CPU build; 64 blocks and 4 sequences make KV use and waiting visible."""

ENGINE_INTERVAL_S = 1.0
WINDOW = "1h"
"""Longer than the run, so campwatch's window starts at its first scrape, taken before any request."""


@dataclass
class Stack:
    work: Path
    vllm_url: str
    proxy_url: str
    metrics_url: str
    db_path: Path
    baseline_page: str  # vLLM's /metrics before campwatch's first scrape and before any request
    processes: list[tuple[str, subprocess.Popen[bytes], Path]]

    def logs(self) -> str:
        out = []
        for name, _, log in self.processes:
            text = log.read_text(errors="replace") if log.exists() else ""
            out.append(f"--- {name} ({log}) last lines ---\n" + "\n".join(text.splitlines()[-60:]))
        return "\n".join(out)


def _wait_http(url: str, deadline_s: float, proc: subprocess.Popen[bytes], what: str, log: Path,
               ok: str | None = None) -> str:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before answering {url}; log {log}:\n"
                               + log.read_text(errors="replace")[-4000:])
        with contextlib.suppress(httpx.HTTPError):
            resp = httpx.get(url, timeout=5)
            if resp.status_code == 200 and (ok is None or ok in resp.text):
                return resp.text
        time.sleep(1)
    raise RuntimeError(f"{what} did not answer {url} within {deadline_s:.0f} s; log {log}:\n"
                       + log.read_text(errors="replace")[-4000:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # vLLM runs its engine core in a child process
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@contextlib.contextmanager
def running_stack(work: Path, model_dir: Path, campwatch_bin: Path) -> Iterator[Stack]:
    work.mkdir(parents=True, exist_ok=True)
    vllm_port, proxy_port, metrics_port = free_port(), free_port(), free_port()
    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        log = work / "vllm.log"
        env = {**os.environ, **VLLM_ENV}
        cmd = [sys.executable, str(ROOT / "e2e" / "launch_vllm.py"), "serve", str(model_dir),
               "--served-model-name", MODEL_NAME, "--host", "127.0.0.1", "--port", str(vllm_port), *VLLM_FLAGS]
        with log.open("wb") as sink:
            vllm = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        processes.append(("vllm", vllm, log))
        vllm_url = f"http://127.0.0.1:{vllm_port}"
        _wait_http(vllm_url + "/health", 900, vllm, "vLLM", log)
        baseline = httpx.get(vllm_url + "/metrics", timeout=10).text

        db_path = work / "campwatch.db"
        for stale in work.glob("campwatch.db*"):
            stale.unlink()
        config = work / "campwatch.toml"
        config.write_text(f"""
[store]
url = "sqlite:///{db_path}"
flush_interval_s = 0.5
[gpu]
enabled = false
[engine]
urls = ["{vllm_url}/metrics"]
interval_s = {ENGINE_INTERVAL_S}
windows = ["{WINDOW}"]
[metrics]
host = "127.0.0.1"
port = {metrics_port}
[proxy]
listen = "127.0.0.1:{proxy_port}"
upstream = "{vllm_url}"
[capture]
caller_salt = "campwatch-e2e"
[drift]
enabled = false
""")
        clog = work / "campwatch.log"
        with clog.open("wb") as sink:
            own = {k: v for k, v in os.environ.items() if not k.startswith("CAMPWATCH_")}  # the file decides
            campwatch = subprocess.Popen([str(campwatch_bin), "run", "--config", str(config), "--host", "e2e"],
                                         stdout=sink, stderr=subprocess.STDOUT, cwd=work, env=own,
                                         start_new_session=True)
        processes.append(("campwatch", campwatch, clog))
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        _wait_http(metrics_url, 120, campwatch, "campwatch", clog, ok='campwatch_engine_up{')
        _wait_http(f"http://127.0.0.1:{proxy_port}/health", 60, campwatch, "campwatch's proxy", clog)
        yield Stack(work, vllm_url, f"http://127.0.0.1:{proxy_port}", metrics_url, db_path, baseline, processes)
    finally:
        for _, proc, _ in reversed(processes):
            _stop(proc)
