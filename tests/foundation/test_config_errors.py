"""Configuration errors name their real source, all at once, with the documented exit codes; the
`config keys` reference; log flags and the startup summary."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.cli import main
from agent.config import Settings, load_settings
from agent.config_keys import setting_keys
from agent.errors import ConfigError
from agent.logs import JsonFormatter, startup_lines


def problems(**kwargs: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_settings(**kwargs)
    return {p.where: str(p) for p in info.value.problems}


def test_a_bad_environment_value_is_blamed_on_the_variable_not_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[gpu]\ninterval_s = 2\n")
    found = problems(path=path, environ={"CAMPWATCH_GPU__INTERVAL_S": "abc"})
    assert found["gpu.interval_s"].startswith("gpu.interval_s (CAMPWATCH_GPU__INTERVAL_S): ")


def test_a_bad_file_value_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('host = "h"\n\n[metrics]\n# the port\nport = 70000\n')
    assert f"metrics.port ({path}:5): " in problems(path=path, environ={})["metrics.port"]


def test_a_bad_flag_is_blamed_on_the_flag_and_exits_2(tmp_path: Path) -> None:
    env = {"CAMPWATCH_GPU__INTERVAL_S": "2"}
    result = CliRunner().invoke(main, ["run", "--no-gpu", "--db", "mysql://u@h/db"], env=env)
    assert result.exit_code == 2
    assert "store.url (--db): expected a sqlite or postgresql URL" in result.output
    assert "defaults + environment" not in result.output


def test_every_bad_engine_url_of_a_list_is_reported_with_its_position() -> None:
    found = problems(overrides={"engine": {"urls": ["ftp://a", "http://ok/metrics", "b"]}}, environ={},
                     flags={"engine.urls": "--engine-url"})
    assert set(found) == {"engine.urls[0]", "engine.urls[2]"}
    assert found["engine.urls[2]"] == ("engine.urls[2] (--engine-url): expected an http(s):// URL of a /metrics "
                                       "endpoint (got 'b')")


def test_an_empty_upstream_or_otlp_endpoint_is_off_and_a_bad_one_names_what_was_expected() -> None:
    settings = load_settings(overrides={"proxy": {"upstream": ""}, "otlp": {"endpoint": ""}}, environ={})
    assert (settings.proxy.upstream, settings.otlp.endpoint) == ("", "")
    found = problems(overrides={"otlp": {"endpoint": "collector:4318"}, "engine": {"urls": ["http://ok/metrics"]}},
                     environ={})
    assert found == {"otlp.endpoint": "otlp.endpoint (command line): expected an http(s):// OTLP/HTTP endpoint "
                                      "(got 'collector:4318')"}


def test_a_bad_upstream_is_reported_next_to_a_bad_listen() -> None:
    found = problems(environ={"CAMPWATCH_PROXY__LISTEN": "nowhere", "CAMPWATCH_PROXY__UPSTREAM": "ftp://x"})
    assert set(found) == {"proxy.listen", "proxy.upstream"}
    assert found["proxy.upstream"] == ("proxy.upstream (CAMPWATCH_PROXY__UPSTREAM): expected an http(s):// base "
                                       "URL (got 'ftp://x')")


def test_a_section_wide_check_names_where_each_of_its_keys_came_from(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[proxy]\nlisten = "127.0.0.1:8001"\n')
    found = problems(path=path, environ={})
    assert found["proxy"] == (f"proxy (proxy.listen from {path}:2): listen and upstream go together: set both to "
                              "enable the proxy, or neither")


def test_the_value_a_validator_already_shows_is_not_repeated() -> None:
    message = problems(overrides={"store": {"url": "mysql://u@h/db"}}, environ={})["store.url"]
    assert message.count("got") == 1 and message.count("mysql") == 1


def test_postgres_urls_are_accepted_as_postgresql() -> None:
    settings = load_settings(overrides={"store": {"url": "postgres://u@db/campwatch"}}, environ={})
    assert settings.store.url.get_secret_value() == "postgresql://u@db/campwatch"
    settings = load_settings(environ={"CAMPWATCH_STORE__URL": "postgres+psycopg://u@db/c"})
    assert settings.store.url.get_secret_value() == "postgresql+psycopg://u@db/c"


def test_an_unknown_key_suggests_the_near_one_and_points_at_the_key_list(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[cost.baselines]]\nprovider = "openai"\nmodel = "gpt-4o"\ndiscont = 0.1\n')
    found = problems(path=path, environ={"CAMPWATCH_METRICS__PROT": "9000"})
    assert found["metrics.prot"] == ("metrics.prot (CAMPWATCH_METRICS__PROT): unknown key (did you mean 'port'? "
                                     "`campwatch config keys` lists every key)")
    assert found["cost.baselines[0].discont"].startswith(f"cost.baselines[0].discont ({path}:4): unknown key "
                                                         "(did you mean 'discount'?")


def test_an_unknown_api_baseline_exits_2_as_documented(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[cost.baselines]]\nprovider = "openai"\nmodel = "no-such-model"\n')
    result = CliRunner().invoke(main, ["check-config", str(path)], env={"CAMPWATCH_CONFIG": None})
    assert result.exit_code == 2, result.output
    assert "cost.baselines[0] openai/no-such-model" in result.output


def _leaves(data: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out |= _leaves(value, f"{prefix}{key}.")
        else:
            out.add(f"{prefix}{key}")
    return out


def test_config_keys_lists_every_key_with_type_default_and_variable() -> None:
    keys = {k.key: k for k in setting_keys()}
    assert _leaves(Settings().model_dump(mode="json")) <= set(keys)
    interval = keys["gpu.interval_s"]
    assert (interval.type, interval.default, interval.env) == ("number", "1.0", "CAMPWATCH_GPU__INTERVAL_S")
    assert keys["log_format"].type == '"text" | "json"'
    assert keys["cost.baselines[].provider"].type == "string"
    assert keys["gpu.devices"].description.startswith("GPUs to read")
    result = CliRunner().invoke(main, ["config", "keys", "--json"])
    assert result.exit_code == 0
    listed = {entry["key"]: entry for entry in json.loads(result.output)}
    assert listed["metrics.port"]["env"] == "CAMPWATCH_METRICS__PORT"


def test_json_log_lines_are_one_object_each_with_ts_level_logger_message() -> None:
    record = logging.LogRecord("agent.x", logging.WARNING, __file__, 1, "disk %s", ("full",), None)
    record.created = 0.0
    assert json.loads(JsonFormatter().format(record)) == {
        "ts": "1970-01-01T00:00:00.000Z", "level": "WARNING", "logger": "agent.x", "message": "disk full"}


def test_the_startup_summary_names_what_is_read_and_written_without_secrets() -> None:
    settings = load_settings(overrides={
        "store": {"url": "postgresql://svc:s3cret@db/campwatch"},
        "engine": {"urls": ["http://u:pw1@10.0.0.5:8000/metrics?token=tk2"]},
        "proxy": {"listen": "0.0.0.0:8001", "upstream": "http://127.0.0.1:8000"},
        "gpu": {"devices": ["0", "GPU-a"]},
        "otlp": {"endpoint": "http://collector:4318/v1/metrics", "headers": {"authorization": "Bearer zz9"}},
    }, environ={})
    lines = startup_lines(settings, "/etc/campwatch.toml", {"CAMPWATCH_HOST": "n1", "HOME": "/root"})
    text = "\n".join(lines)
    for secret in ("s3cret", "pw1", "tk2", "zz9"):
        assert secret not in text
    assert "store: postgresql://svc:***@db/campwatch" in lines
    assert "engines: http://u:***@10.0.0.5:8000/metrics?token=*** every 5 s" in lines
    assert "proxy: 0.0.0.0:8001 -> http://127.0.0.1:8000" in lines
    assert "GPUs: every 1 s, devices: 0, GPU-a" in lines
    assert "file /etc/campwatch.toml, environment: CAMPWATCH_HOST" in lines[0]
    assert "OTLP: http://collector:4318/v1/metrics every 60 s (headers authorization)" in lines


def test_run_logs_json_lines_with_the_startup_summary(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPWATCH_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--no-gpu", "--db", f"sqlite:///{tmp_path / 'r.db'}",
         "--metrics-port", "0", "--log-format", "json", "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**env, "CAMPWATCH_DRIFT__ENABLED": "false"})
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # until the runner is up (its signal handlers are then installed)
            lines.append(line)
            if "serving /metrics" in line or len(lines) > 200:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, "".join(lines) + err
    entries = [json.loads(line) for line in "".join(lines).splitlines() + err.splitlines() if line.strip()]
    assert all(set(e) == {"ts", "level", "logger", "message"} for e in entries), entries
    startup = [e["message"] for e in entries if e["logger"] == "agent.startup"]
    assert startup[1] == f"store: sqlite:///{tmp_path / 'r.db'}" and "GPUs: off" in startup


def test_the_log_level_hides_what_is_below_it() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPWATCH_")}
    proc = subprocess.run(
        [sys.executable, "-c", "from agent.cli import _logging; import logging; _logging('WARNING', 'json'); "
         "log = logging.getLogger('agent.t'); log.info('hidden'); log.warning('one\\ntwo')"],
        capture_output=True, text=True, env=env, timeout=30, check=True)
    entries = [json.loads(line) for line in proc.stderr.splitlines()]
    assert [(e["level"], e["logger"], e["message"]) for e in entries] == [("WARNING", "agent.t", "one\ntwo")]
