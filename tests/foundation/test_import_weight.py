"""The sidecar's run path stays light: what `campwatch run` imports with default settings never pulls
in the analysis stack (the drift worker and the review notebooks load it in their own processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine

from agent.store.migrate import head_revision, upgrade
from agent.store.revisions import file_head

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "evidently", "matplotlib", "sklearn", "scipy", "numpy", "plotly", "opentelemetry.sdk")

PROBE = """
import json, sys
import agent.cli
from agent.config import load_settings
from agent.wiring import build_runner
settings = load_settings(None, overrides={"store": {"url": sys.argv[1]},
                                          "engine": {"urls": ["http://127.0.0.1:9/metrics"]},
                                          "proxy": {"listen": "127.0.0.1:0", "upstream": "http://127.0.0.1:9"}})
parts = build_runner(settings)
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after_build(url: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, url], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _loaded(modules: set[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def test_the_run_path_with_default_settings_imports_no_analysis_stack_and_no_alembic_when_migrated(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cw.db'}"
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    modules = _modules_after_build(url)
    assert [name for name in HEAVY if _loaded(modules, name)] == []
    # a restart on a database already at head needs no migration machinery (about 11 MiB)
    assert [name for name in ("alembic", "mako", "pygments") if _loaded(modules, name)] == []
    # nor rich (only the CLI's other commands print through it) nor, on SQLite, PostgreSQL's dialect
    assert [name for name in ("rich", "sqlalchemy.dialects.postgresql") if _loaded(modules, name)] == []


def test_a_fresh_database_is_still_migrated_on_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    modules = _modules_after_build(url)
    assert _loaded(modules, "alembic")
    engine = create_engine(url)
    try:
        from agent.store.migrate import current_revision

        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_the_head_read_from_the_revision_files_is_alembics_head() -> None:
    assert file_head() == head_revision()
