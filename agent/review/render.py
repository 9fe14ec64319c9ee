"""`campwatch review`: execute the review notebooks with papermill in a real Jupyter kernel (their
parameters cell gets the database, period, host, settings and plan) and export each as one
self-contained HTML file (nbconvert; figures are embedded as data URIs). Reads only: the notebooks
open the store through agent.store.db.open_store, which by default never migrates or writes.

papermill and nbconvert are optional (the `review` extra); a missing one is a ReviewError that says
what to install, not an ImportError."""

from __future__ import annotations

import html
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.errors import ConfigError, Problem, ReviewError

NOTEBOOKS_DIR = Path(__file__).resolve().parent / "notebooks"
"""The notebooks, as package data: in the source tree agent/review/notebooks links to notebooks/
(the one copy), and a wheel carries the files (pyproject package-data), so a non-editable install
finds them too."""

QUARTERLY = "quarterly_cost_review.ipynb"
ALL = (
    ("quarterly_cost_review.ipynb", "Quarterly cost review", "actual against plan, $/Mtok against API baselines, "
     "the verdict"),
    ("gpu_capacity.ipynb", "GPU capacity", "utilization by hour of day, headroom, tokens per GPU-hour"),
    ("drift_investigation.ipynb", "Drift investigation", "what moved in the outputs, and since when"),
)


@dataclass(frozen=True, slots=True)
class ReviewParameters:
    """What the notebooks' parameters cell receives (None: the notebook's own default)."""

    db_url: str
    quarter: str
    host: str | None = None
    config: str | None = None
    plan: str | None = None
    now: datetime | None = None
    figures_json: str | None = None
    """A file the quarterly notebook writes the figures it shows to (JSON), for a diff or a test."""

    def as_papermill(self) -> dict[str, Any]:
        return {"DB_URL": self.db_url, "QUARTER": self.quarter, "HOST": self.host, "CONFIG": self.config,
                "PLAN": self.plan, "NOW_TEXT": None if self.now is None else self.now.isoformat(),
                "FIGURES_JSON": self.figures_json}


def plan_overrides(plan_file: str | None) -> dict[str, Any]:
    """Settings overrides from a plan file: `[[plan]]` (or `[[cost.plan]]`) entries with quarter,
    tokens_per_month, cost_per_month_usd and optionally usd_per_gpu_hour. ConfigError naming the file
    when it is unreadable."""
    if not plan_file:
        return {}
    path = Path(plan_file)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("--plan", [Problem(str(path), f"expected a readable TOML plan file: {exc}")]) from None
    entries = data.get("plan", data.get("cost", {}).get("plan") if isinstance(data.get("cost"), dict) else None)
    if not isinstance(entries, list) or not entries:
        raise ConfigError("--plan", [Problem(str(path), "expected [[plan]] entries with quarter, tokens_per_month "
                                                        "and cost_per_month_usd")])
    return {"cost": {"plan": entries}}


def _imports() -> tuple[Any, Any]:
    try:
        import papermill
        from nbconvert import HTMLExporter
    except ImportError as exc:
        raise ReviewError(f"campwatch review needs papermill and nbconvert: pip install 'campwatch[review]' "
                          f"({exc})") from None
    return papermill, HTMLExporter


def render_notebook(notebook: Path, out: Path, params: ReviewParameters, *, progress: bool = True) -> Path:
    """Execute one notebook and write its HTML report to `out`. ReviewError naming the cell when a
    cell fails (the HTML is then not written)."""
    papermill, html_exporter = _imports()
    import nbformat

    if not notebook.is_file():
        raise ReviewError(f"notebook {notebook} not found (the review notebooks ship in the campwatch package, "
                          "agent/review/notebooks/: reinstall campwatch)")
    with tempfile.TemporaryDirectory(prefix="campwatch-review-") as tmp:
        executed = Path(tmp) / notebook.name
        try:
            papermill.execute_notebook(str(notebook), str(executed), parameters=params.as_papermill(),
                                       kernel_name="python3", progress_bar=progress, cwd=str(notebook.parent),
                                       log_output=False, report_mode=False)
        except papermill.PapermillExecutionError as exc:
            raise ReviewError(f"{notebook.name}: cell {exc.cell_index} (execution {exc.exec_count}) failed: "
                              f"{exc.ename}: {exc.evalue}") from None
        book = nbformat.read(str(executed), as_version=4)  # type: ignore[no-untyped-call]
    exporter = html_exporter(embed_images=True, exclude_input=True, exclude_input_prompt=True,
                             exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(book, resources={"metadata": {"name": notebook.stem}})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out


def render_all(folder: Path, params: ReviewParameters, *, notebooks_dir: Path = NOTEBOOKS_DIR,
               progress: bool = True) -> Path:
    """The three review notebooks into one folder, with an index.html linking them; returns the index."""
    folder.mkdir(parents=True, exist_ok=True)
    done: list[tuple[str, str, str]] = []
    for name, title, what in ALL:
        target = folder / (Path(name).stem + ".html")
        render_notebook(notebooks_dir / name, target, params, progress=progress)
        done.append((target.name, title, what))
    return write_index(folder, done, params)


def write_index(folder: Path, pages: Sequence[tuple[str, str, str]], params: ReviewParameters) -> Path:
    scope = params.host or "every host"
    items = "\n".join(f'<li><a href="{html.escape(href)}">{html.escape(title)}</a>: {html.escape(what)}</li>'
                      for href, title, what in pages)
    index = folder / "index.html"
    index.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>campwatch review "
        f"{html.escape(params.quarter)}</title></head><body>\n<h1>campwatch review {html.escape(params.quarter)}</h1>\n"
        f"<p>Scope: {html.escape(scope)}.</p>\n<ul>\n{items}\n</ul>\n</body></html>\n", encoding="utf-8")
    return index


def describe(params: ReviewParameters, extra: Mapping[str, str] | None = None) -> str:
    """One line for the terminal: what is being reviewed (the URL without its password)."""
    from sqlalchemy.engine import make_url

    url = make_url(params.db_url).render_as_string(hide_password=True)
    parts = [f"{params.quarter}", url, params.host or "every host", *(extra or {}).values()]
    return " | ".join(parts)
