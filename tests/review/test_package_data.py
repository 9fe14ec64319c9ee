"""`campwatch review` finds its notebooks in the installed package, not only in a checkout: the
package's agent/review/notebooks is the one copy (a link to notebooks/ in the source tree), and a
wheel carries the files themselves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import agent.review
from agent.review.render import ALL, NOTEBOOKS_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_the_resolver_finds_every_notebook_in_the_package_and_it_is_the_one_copy() -> None:
    assert Path(agent.review.__file__).resolve().parent / "notebooks" == NOTEBOOKS_DIR
    for name, _, _ in ALL:
        packaged = NOTEBOOKS_DIR / name
        assert packaged.is_file(), packaged
        assert packaged.resolve() == (ROOT / "notebooks" / name).resolve()  # a link, not a second copy
    assert sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")) == sorted(name for name, _, _ in ALL)


@pytest.mark.slow
def test_a_wheel_install_resolves_the_notebooks_without_the_source_tree(tmp_path: Path) -> None:
    pip = [sys.executable, "-m", "pip"]
    source = tmp_path / "src"  # a copy, links kept, so the build writes nothing into the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    for folder in ("agent", "notebooks"):
        shutil.copytree(ROOT / folder, source / folder, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    assert (source / "agent" / "review" / "notebooks").is_symlink()
    subprocess.run([*pip, "wheel", str(source), "--no-deps", "-q", "-w", str(tmp_path / "wheel")], check=True,
                   capture_output=True, timeout=600)
    [wheel] = (tmp_path / "wheel").glob("campwatch-*.whl")
    with zipfile.ZipFile(wheel) as z:
        for name, _, _ in ALL:
            assert z.read(f"agent/review/notebooks/{name}") == (ROOT / "notebooks" / name).read_bytes()
    target = tmp_path / "installed"
    subprocess.run([*pip, "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True,
                   capture_output=True, timeout=600)
    probe = ("import agent.review.render as r; "
             "print(r.__file__); print(all((r.NOTEBOOKS_DIR / n).is_file() for n, _, _ in r.ALL))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(target)}, timeout=120).stdout.split()
    assert out == [str(target / "agent" / "review" / "render.py"), "True"]
