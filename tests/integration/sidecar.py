"""Running the real `campwatch run` in a subprocess against test doubles: the fake NVML library
(through LD_LIBRARY_PATH, exactly how pynvml finds a real driver) and HTTP model servers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support.fakenvml import SCENARIOS, build_fake_library
from tests.support.net import free_port


class Sidecar:
    def __init__(self, args: Sequence[str], *, scenario: str | None = "h100_8gpu", env: dict[str, str] | None = None,
                 metrics_port: int | None = None) -> None:
        self.metrics_port = metrics_port or free_port()
        self.args = [sys.executable, "-m", "agent.cli", "run", "--metrics-port", str(self.metrics_port), *args]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPWATCH_")}
        if scenario is not None:
            # the fake's GPUs are not the ones a GPU host's runtime names (campwatch scopes GPUs by these)
            self.env.pop("NVIDIA_VISIBLE_DEVICES", None)
            self.env.pop("CUDA_VISIBLE_DEVICES", None)
            library = build_fake_library()
            self.env["LD_LIBRARY_PATH"] = f"{library.parent}:{self.env.get('LD_LIBRARY_PATH', '')}"
            self.env["FAKENVML_SCENARIO"] = str(SCENARIOS / f"{scenario}.scn")
        self.env.update(env or {})
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr = ""

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, env=self.env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)

    async def scrape(self) -> str:
        async with aiohttp.ClientSession() as session, session.get(self.metrics_url) as response:
            return await response.text()

    async def wait_for(self, *needles: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        page = ""
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(f"campwatch exited early: {await self._stderr()}")
            try:
                page = await self.scrape()
                if all(n in page for n in needles):
                    return page
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.3)
        raise AssertionError(f"timed out waiting for {needles}; last page:\n{page[:2000]}")

    async def wait_until(self, condition: Callable[[dict[str, float]], bool], timeout: float = 60.0) -> str:
        """Scrape until `condition(rows written per table)` holds; returns that page."""
        deadline = time.monotonic() + timeout
        written: dict[str, float] = {}
        while time.monotonic() < deadline:
            page = await self.scrape()
            written = {s.labels["table"]: s.value for f in text_string_to_metric_families(page)
                       if f.name == "campwatch_samples_written" for s in f.samples}
            if condition(written):
                return page
            await asyncio.sleep(0.3)
        raise AssertionError(f"timed out; rows written so far: {written}")

    async def _stderr(self) -> str:
        assert self.proc is not None and self.proc.stderr is not None
        return (await self.proc.stderr.read()).decode(errors="replace")

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.stderr = (await asyncio.wait_for(self._stderr(), timeout=30))
            return await asyncio.wait_for(self.proc.wait(), timeout=30)
        except TimeoutError:
            self.proc.kill()
            raise


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
