from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_settings, masked
from agent.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "campwatch.toml"
    path.write_text(text)
    return path


def test_defaults_resolve_without_any_file() -> None:
    settings = load_settings(environ={})
    assert settings.gpu.interval_s == 1.0
    assert settings.engine.interval_s == 5.0
    assert settings.metrics.port == 18400
    assert settings.store.url.get_secret_value().startswith("sqlite:///")


def test_file_then_env_then_cli_override_in_that_order(tmp_path: Path) -> None:
    path = write(tmp_path, '[gpu]\ninterval_s = 2.0\n[engine]\ninterval_s = 10\n[metrics]\nport = 9000\n')
    settings = load_settings(path, overrides={"metrics": {"port": 9500}},
                             environ={"CAMPWATCH_ENGINE__INTERVAL_S": "7", "CAMPWATCH_METRICS__PORT": "9100"})
    assert settings.gpu.interval_s == 2.0  # file
    assert settings.engine.interval_s == 7.0  # env over file
    assert settings.metrics.port == 9500  # cli over env


def test_every_problem_is_reported_with_its_key_path(tmp_path: Path) -> None:
    path = write(tmp_path, '[gpu]\ninterval_s = -1\ncolour = "red"\n[engine]\nurls = ["ftp://x"]\n'
                           '[store]\nurl = "mysql://x/y"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    where = {p.where for p in info.value.problems}
    assert where == {"gpu.interval_s", "gpu.colour", "engine.urls[0]", "store.url"}
    text = str(info.value)
    assert "greater than 0" in text and "unknown key" in text and "http(s)://" in text and "mysql" in text


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[gpu\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert str(path) in str(info.value) and "TOML" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_engine_timeout_must_be_shorter_than_interval() -> None:
    with pytest.raises(ConfigError, match="shorter than interval_s"):
        load_settings(overrides={"engine": {"interval_s": 5, "timeout_s": 5}}, environ={})
    assert load_settings(overrides={"engine": {"interval_s": 5}}, environ={}).engine.effective_timeout_s == 4.0


def test_proxy_needs_listen_and_upstream_together() -> None:
    with pytest.raises(ConfigError, match="go together"):
        load_settings(overrides={"proxy": {"listen": "127.0.0.1:8001"}}, environ={})


def test_masked_hides_database_password() -> None:
    settings = load_settings(overrides={"store": {"url": "postgresql://u:hunter2@db/campwatch"}}, environ={})
    shown = masked(settings)
    assert "hunter2" not in str(shown)
    assert shown["store"]["url"] == "postgresql://u:***@db/campwatch"
