from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from agent.cli import main
from agent.store.migrate import head_revision
from tests.support.net import free_port


def test_check_config_prints_resolved_settings_with_secrets_masked(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('host = "gpu-node-7"\n[store]\nurl = "postgresql://svc:s3cret@db.internal/campwatch"\n')
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    assert "gpu-node-7" in result.output and "s3cret" not in result.output and "***" in result.output


def test_check_config_lists_every_error_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[gpu]\ninterval_s = "often"\n[metrics]\nport = 70000\n')
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 2
    assert "gpu.interval_s" in result.output and "metrics.port" in result.output


def test_cost_rejects_a_malformed_window_with_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["cost", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--since", "soon"])
    assert result.exit_code == 2
    assert "--since" in result.output and "'soon'" in result.output


def test_db_upgrade_reports_the_revision(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade", "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 0, result.output

    assert f"is at revision {head_revision()}" in result.output.replace("\n", " ")


def test_run_serves_metrics_with_an_unreachable_engine_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    port, dead = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPWATCH_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--no-gpu", "--db", f"sqlite:///{tmp_path / 'r.db'}",
         "--metrics-port", str(port), "--engine-url", f"http://127.0.0.1:{dead}/metrics",
         "--engine-interval", "0.5", "--host", "test-host"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        page = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                if 'campwatch_engine_up' in page:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert "campwatch_engine_up" in page, page
        assert 'campwatch_collector_up{collector="engine:' in page
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "failed" in err and f"127.0.0.1:{dead}" in err  # one clear message naming the endpoint
    assert "stopped;" in err


def test_unwritable_sqlite_path_is_one_store_error_with_exit_3(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["db", "upgrade", "--db", f"sqlite:///{blocker}/sub/x.db"])
    assert result.exit_code == 3
    assert "cannot create the folder" in result.output and "Traceback" not in result.output
