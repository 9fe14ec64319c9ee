"""Issue 9, finding 5 (the listener side): a port that cannot be bound at start is a fatal start error,
exit 2 with one message naming the setting, host:port and the reason. On the old code the metrics
port was a log line while the process ran on, and a proxy bind failure only a `could not start` line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.errors import ListenError
from agent.listen import bind_listeners, bound_port
from tests.support.net import free_port


@pytest.fixture
def taken() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield int(holder.getsockname()[1])


def test_binding_a_taken_port_raises_one_error_naming_setting_host_port_and_reason(taken: int) -> None:
    with pytest.raises(ListenError) as caught:
        bind_listeners("metrics.port", "127.0.0.1", taken)
    assert str(caught.value) == f"metrics.port: cannot listen on 127.0.0.1:{taken}: Address already in use"


def test_port_0_binds_a_free_port_and_reports_it() -> None:
    sockets = bind_listeners("proxy.listen", "127.0.0.1", 0)
    try:
        assert len(sockets) == 1 and bound_port(sockets) == sockets[0].getsockname()[1] > 0
    finally:
        for sock in sockets:
            sock.close()


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPWATCH_")}
    return subprocess.run([sys.executable, "-m", "agent.cli", "run", "--no-gpu", "--db",
                           f"sqlite:///{tmp_path / 'l.db'}", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_run_exits_2_naming_the_metrics_port_it_cannot_bind(tmp_path: Path, taken: int) -> None:
    result = _run(tmp_path, "--metrics-port", str(taken))
    assert result.returncode == 2, result.stderr
    assert f"metrics.port: cannot listen on 127.0.0.1:{taken}: Address already in use" in result.stderr


def test_run_exits_2_naming_the_proxy_port_it_cannot_bind(tmp_path: Path, taken: int) -> None:
    metrics_port = free_port()
    result = _run(tmp_path, "--metrics-port", str(metrics_port), "--proxy-listen", f"127.0.0.1:{taken}",
                  "--proxy-upstream", "http://127.0.0.1:9")
    assert result.returncode == 2, result.stderr
    assert f"proxy.listen: cannot listen on 127.0.0.1:{taken}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr
