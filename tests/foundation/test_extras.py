"""The analysis stack is an optional install: the core runs without it, and what needs it says which
extra to install instead of failing on an ImportError or retrying every interval."""

from __future__ import annotations

import importlib.util
import logging
import tomllib
from importlib.machinery import ModuleSpec
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import main
from agent.config import load_settings
from agent.errors import MissingExtra
from agent.extras import EXTRA_MODULES, missing_modules, require_extra
from agent.wiring import build_runner

ROOT = Path(__file__).resolve().parents[2]
_real_find_spec = importlib.util.find_spec


@pytest.fixture
def without_evidently(monkeypatch: pytest.MonkeyPatch) -> None:
    def find_spec(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name.split(".")[0] == "evidently" else _real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_the_core_install_leaves_the_analysis_stack_to_the_drift_and_review_extras() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {dep.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
            for dep in project["dependencies"]}
    assert core & {"evidently", "pandas", "matplotlib", "scikit-learn", "scipy"} == set()
    extras = project["optional-dependencies"]
    for extra, modules in EXTRA_MODULES.items():
        names = {dep.split("=")[0].split(">")[0].split("<")[0].strip().lower() for dep in extras[extra]}
        assert names == set(modules)


def test_a_missing_extra_is_one_error_naming_the_extra_and_the_pip_command(without_evidently: None) -> None:
    assert missing_modules("drift") == ["evidently"]
    with pytest.raises(MissingExtra) as caught:
        require_extra("drift", "campwatch drift")
    assert caught.value.extra == "drift"
    assert str(caught.value) == (
        "campwatch drift needs the 'drift' extra (missing: evidently); install it with pip install "
        "'campwatch[drift]' (a checkout: make test, or pip install -e '.[drift]')")


def test_the_drift_command_without_its_extra_exits_2_naming_the_extra(tmp_path: Path,
                                                                      without_evidently: None) -> None:
    result = CliRunner().invoke(main, ["drift", "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2
    assert "'drift' extra" in result.output
    assert "pip install 'campwatch[drift]'" in result.output  # brackets printed, not taken as markup
    assert not (tmp_path / "x.db").exists()  # refused before touching the database


def _periodic_names(tmp_path: Path) -> list[str]:
    settings = load_settings(None, overrides={"store": {"url": f"sqlite:///{tmp_path / 'cw.db'}"},
                                              "gpu": {"enabled": False}})
    parts = build_runner(settings)
    try:
        return [name for name, _interval, _job in parts.runner.periodic]
    finally:
        parts.engine.dispose()


def test_without_the_drift_extra_the_agent_runs_no_drift_job_and_says_so_once(
        tmp_path: Path, without_evidently: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agent.wiring"):
        names = _periodic_names(tmp_path)
    assert names == ["maintenance", "cost"]
    said = [r.getMessage() for r in caplog.records if "'drift' extra" in r.getMessage()]
    assert len(said) == 1
    assert said[0].startswith("drift checks are off: drift.enabled is true but the 'drift' extra is not installed")


def test_with_the_drift_extra_the_agent_schedules_its_drift_job(tmp_path: Path) -> None:
    assert _periodic_names(tmp_path) == ["maintenance", "cost", "drift"]
