"""`campwatch review`: the quarterly notebook executed by papermill in a real kernel and exported to
self-contained HTML, checked in headless Chromium (every figure decoded with a non-zero size, the
verdict sentence present), its figures equal to `campwatch cost --quarter --json` for the same
window, read-only, and a failing cell an exit 1 that names the cell."""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.cli import main
from agent.sim.history import HistoryPlan, seed_history
from agent.store.db import open_engine, open_store

END = datetime(2026, 9, 20, tzinfo=UTC)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.slow

PROBE = ("<script>window.addEventListener('load', () => { document.body.setAttribute('data-images', "
         "JSON.stringify([...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]))); });"
         "</script>")


@pytest.fixture(scope="module")
def quarter_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("review-cli") / "quarter.db"
    engine = open_store(f"sqlite:///{path}", upgrade=True)
    seed_history(engine, HistoryPlan(days=8, gpus=2, end=END, request_record_days=8))
    engine.dispose()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rendered(page: Path, tmp: Path) -> tuple[list[tuple[bool, int, int]], str]:
    """Open the page in headless Chromium: each image's (complete, naturalWidth, naturalHeight) and
    the page's text after load."""
    assert CHROMIUM, "chromium is not installed (.ci/run installs the Debian chromium package)"
    probe = tmp / ("probe-" + page.name)
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp / 'chr'}",
                          "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    found = re.search(r'data-images="([^"]*)"', dom)
    assert found, "the page's load handler did not run"
    text = html.unescape(re.sub(r"<[^>]+>", " ", dom))
    images: list[tuple[bool, int, int]] = [tuple(image) for image in json.loads(html.unescape(found.group(1)))]
    return images, re.sub(r"\s+", " ", text)


def test_review_html_renders_every_figure_and_equals_cost_json(quarter_db: Path, tmp_path: Path) -> None:
    before = digest(quarter_db)
    url = f"sqlite:///{quarter_db}"
    out, figures = tmp_path / "report.html", tmp_path / "figures.json"
    result = CliRunner().invoke(main, ["review", "--quarter", "2026Q3", "--db", url, "--out", str(out),
                                       "--figures-json", str(figures)])
    assert result.exit_code == 0, result.output
    cost = CliRunner().invoke(main, ["cost", "--quarter", "2026Q3", "--db", url, "--json"])
    assert cost.exit_code == 0, cost.output
    expected = json.loads(cost.stdout)
    shown = json.loads(figures.read_text())

    # the notebook's figures are the cost command's, for the same window
    assert (shown["start"], shown["end"]) == (expected["start"], expected["end"]) == (
        "2026-07-01T00:00:00+00:00", "2026-10-01T00:00:00+00:00")
    assert shown["tokens"] == expected["total"]["totals"]["tokens"] > 0
    assert shown["cost_allocation_usd"] == pytest.approx(float(expected["total"]["allocation"]["total_usd"]))
    assert shown["cost_allocation_usd"] == pytest.approx(2 * 8 * 24 * 2.50, rel=0.01)  # 2 GPUs, 8 days, $2.50/h
    months = {p["label"]: p for p in expected["periods"] if p["period"] == "month"}
    assert [m["month"] for m in shown["months"]] == list(months) == ["2026-09"]
    for m in shown["months"]:
        assert m["cost_allocation_usd"] == pytest.approx(float(months[m["month"]]["allocation"]["total_usd"]))
        assert m["cost_usage_usd"] == pytest.approx(float(months[m["month"]]["usage"]["total_usd"]))
    verdicts = [f"[{v['state']}] " + " ".join(v["reasons"]) for v in expected["total"]["verdicts"]]
    assert shown["verdicts"] == verdicts and len(verdicts) == 4

    images, text = rendered(out, tmp_path)
    assert len(images) == 2  # monthly cost, $/Mtok against the baselines
    assert all(complete and width > 0 and height > 0 for complete, width, height in images), images
    for sentence in verdicts:
        assert re.sub(r"\s+", " ", sentence) in text
    assert "2026-Q3" in text and "(simulated data)" in text
    assert digest(quarter_db) == before  # read only


def test_a_failing_cell_exits_1_naming_the_cell(tmp_path: Path) -> None:
    behind = tmp_path / "empty.db"
    open_engine(f"sqlite:///{behind}").dispose()  # never migrated: the notebook's read-only open refuses it
    result = CliRunner().invoke(main, ["review", "--quarter", "2026Q3", "--db", f"sqlite:///{behind}",
                                       "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "quarterly_cost_review.ipynb: cell" in message and "StoreError" in message
    assert "db upgrade" in message
    assert not (tmp_path / "r.html").exists()


def test_a_bad_plan_file_is_one_config_error(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text("[[plan]]\nquarter = 'Q3'\ntokens_per_month = 1\ncost_per_month_usd = 1\n")
    result = CliRunner().invoke(main, ["review", "--quarter", "2026Q3", "--db", "sqlite:///x.db", "--plan", str(plan),
                                       "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert f"cost.plan[0].quarter (--plan {plan}): expected a quarter like 2026-Q4, got 'Q3'" in message


def test_review_all_writes_three_pages_and_an_index_with_the_plan(quarter_db: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text("[[plan]]\nquarter = '2026-Q3'\ntokens_per_month = 2000000000\ncost_per_month_usd = 3000\n")
    folder = tmp_path / "review"
    result = CliRunner().invoke(main, ["review", "--quarter", "2026Q3", "--db", f"sqlite:///{quarter_db}",
                                       "--plan", str(plan), "--all", "--out", str(folder),
                                       "--now", "2026-09-20T00:00:00Z"])
    assert result.exit_code == 0, result.output
    pages = sorted(p.name for p in folder.glob("*.html"))
    assert pages == ["drift_investigation.html", "gpu_capacity.html", "index.html", "quarterly_cost_review.html"]
    index = (folder / "index.html").read_text()
    assert all(f'href="{p}"' in index for p in pages if p != "index.html")
    _, text = rendered(folder / "quarterly_cost_review.html", tmp_path)
    assert "2000.0" in text and "3000.0" in text  # the plan file's Mtok and USD per month
    # no --host: the live drift check covers every host with records (it checked the settings' host before)
    images, text = rendered(folder / "drift_investigation.html", tmp_path)
    assert "drifted now: [('simulated/llama-3.1-8b-instruct', 'completion_tokens')" in text
    assert "change point found: 2026-09-18" in text
    assert len(images) == 3 and all(width > 0 for _, width, _ in images)


def test_figures_have_linear_currency_axes_units_titles_and_the_simulated_mark(quarter_db: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from agent.config import CostSettings
    from agent.review import quarterly
    from agent.review.plots import mark_simulated

    engine = open_engine(f"sqlite:///{quarter_db}")
    report = quarterly.quarter_report(engine, CostSettings(), "2026Q3", now=END)
    engine.dispose()
    for fig in (quarterly.cost_figure(report), quarterly.per_mtok_figure(report)):
        FigureCanvasAgg(fig).draw()  # type: ignore[no-untyped-call]
        ax = fig.axes[0]
        assert ax.get_yscale() == "linear"  # $0.28 to $15/Mtok: no log axis needed
        ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert ticks and all(t.startswith("$") for t in ticks), ticks
        assert ax.get_xlabel() == "month (UTC)" and "USD" in ax.get_ylabel() and ax.get_title()
        assert [t.get_text() for t in fig.texts] == ["SIMULATED"]
    assert mark_simulated(Figure(), False).texts == []


@pytest.mark.postgres
def test_review_on_postgresql_equals_cost_json(pg_url: str, tmp_path: Path) -> None:
    engine = open_store(pg_url, upgrade=True)
    written = seed_history(engine, HistoryPlan(days=3, gpus=1, end=END, request_record_days=3, drift_checks=False))
    engine.dispose()
    assert written["cost_hours"] == 3 * 24
    figures = tmp_path / "figures.json"
    result = CliRunner().invoke(main, ["review", "--quarter", "2026Q3", "--db", pg_url, "--out",
                                       str(tmp_path / "r.html"), "--figures-json", str(figures)])
    assert result.exit_code == 0, result.output
    cost = CliRunner().invoke(main, ["cost", "--quarter", "2026Q3", "--db", pg_url, "--json"])
    assert cost.exit_code == 0, cost.output
    expected, shown = json.loads(cost.stdout), json.loads(figures.read_text())
    assert shown["tokens"] == expected["total"]["totals"]["tokens"] > 0
    assert shown["cost_allocation_usd"] == pytest.approx(float(expected["total"]["allocation"]["total_usd"]))
    assert shown["cost_allocation_usd"] == pytest.approx(3 * 24 * 2.50, rel=0.01)
    assert shown["verdicts"] == [f"[{v['state']}] " + " ".join(v["reasons"]) for v in expected["total"]["verdicts"]]


PRICED_PLAN = """[cost.pricing]
gpu_hourly_usd = 2.50
[[cost.pricing.changes]]
effective_from = "2026-09-16"
gpu_hourly_usd = 2.10
[[cost.plan]]
quarter = "2026-Q3"
tokens_per_month = 2000000000
cost_per_month_usd = 3500
"""


def dec(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def present(value: object) -> Decimal:
    """A figure the JSON must carry."""
    found = dec(value)
    assert found is not None, "expected a figure, got null"
    return found


def test_every_sentence_and_the_variance_equal_cost_json_for_the_same_window(quarter_db: Path, tmp_path: Path) -> None:
    from agent.review import quarterly
    from agent.review.quarterly import MonthAgainstPlan

    config = tmp_path / "settings.toml"
    config.write_text(PRICED_PLAN)
    url = f"sqlite:///{quarter_db}"
    out, figures = tmp_path / "report.html", tmp_path / "figures.json"
    result = CliRunner().invoke(main, ["review", "--quarter", "2026Q3", "--db", url, "--config", str(config),
                                       "--out", str(out), "--figures-json", str(figures)])
    assert result.exit_code == 0, result.output
    cost = CliRunner().invoke(main, ["cost", "--quarter", "2026Q3", "--db", url, "--config", str(config), "--json"])
    assert cost.exit_code == 0, cost.output
    report, shown = json.loads(cost.stdout), json.loads(figures.read_text())
    said = shown["sentences"]
    total = report["total"]

    # the variance, recomputed here from the cost command's JSON alone
    [plan] = report["plan"]
    [quarter] = [p for p in report["periods"] if p["period"] == "quarter"]
    days = [p for p in report["periods"] if p["period"] == "day"]

    def per_gpu_hour(period: dict[str, Any]) -> Fraction:
        return Fraction(Decimal(period["allocation"]["total_usd"])) / (
            Fraction(period["totals"]["allocated_gpu_seconds"]) / 3600)

    rate, opening = per_gpu_hour(quarter), per_gpu_hour(days[0])
    assert float(opening) == pytest.approx(2.50) and float(rate) < 2.50  # the price fell to $2.10 on 2026-09-16
    actual_cost = present(plan["actual_cost_per_month_usd"])
    v = quarterly.plan_variance("2026-Q3", plan_tokens_per_month=plan["projected_tokens_per_month"],
                                plan_cost_per_month_usd=present(plan["projected_cost_per_month_usd"]),
                                plan_usd_per_gpu_hour=opening,
                                actual_tokens_per_month=present(plan["actual_tokens_per_month"]),
                                actual_cost_per_month_usd=actual_cost,
                                actual_gpu_hours_per_month=Fraction(actual_cost) / rate)
    assert v.volume_usd + v.price_usd + v.utilization_usd == v.total_usd
    assert v.price_usd < 0
    [row] = shown["variance"]
    assert (row["volume_usd"], row["price_usd"], row["utilization_usd"], row["difference_usd"]) == (
        float(v.volume_usd), float(v.price_usd), float(v.utilization_usd), float(v.total_usd))
    assert said["drivers"] == [quarterly.variance_sentence(v)]

    months = [MonthAgainstPlan(p["label"], p["hours_with_data"], p["hours_in_period"], p["totals"]["tokens"],
                               Decimal(p["allocation"]["total_usd"]), "2026-Q3", plan["projected_tokens_per_month"],
                               Decimal(plan["projected_cost_per_month_usd"]))
              for p in report["periods"] if p["period"] == "month"]
    assert said["months"] == [quarterly.month_sentence(m) for m in months] and len(months) == 1
    assert said["per_mtok"] == [quarterly.per_mtok_sentence(a["baseline"], dec(a["per_mtok"]),
                                                            dec(total["allocation"]["per_mtok"]),
                                                            dec(total["usage"]["per_mtok"])) for a in total["api"]]
    tokens_per_month = dec(total["run_rate"]["tokens_per_month"])
    assert said["verdicts"] == [quarterly.verdict_sentence(
        x["baseline"], x["state"], dec(x["savings_usd_per_month"]), dec(x["breakeven_tokens_per_month"]),
        x["breakeven_reachable"], tokens_per_month, tuple(x["reasons"])) for x in total["verdicts"]]
    assert len(said["verdicts"]) == 4
    totals = total["totals"]
    assert said["idle"] == [quarterly.idle_sentence(Decimal(total["allocation"]["gpu_usd"]),
                                                    Decimal(total["usage"]["gpu_usd"]),
                                                    Decimal(total["allocation"]["total_usd"]), totals["utilization"])]
    assert shown["idle_usd"] == pytest.approx(float(Decimal(total["allocation"]["gpu_usd"])
                                                    - Decimal(total["usage"]["gpu_usd"])))
    assert said["energy"] == [quarterly.energy_sentence(totals["energy_joules"], totals["tokens"],
                                                        Decimal(total["allocation"]["energy_usd"]))]
    assert shown["joules_per_1k_tokens"] == totals["joules_per_1k_tokens"]
    attribution = {a["by"]: a for a in report["attribution"]}
    assert said["attribution"] == [quarterly.attribution_sentence(
        by, [(s["key"], Decimal(s["allocation_usd"])) for s in attribution[by]["shares"]],
        Decimal(attribution[by]["total_usd"])) for by in ("team", "model")]
    assert said["attribution"][0].startswith("No cost by team")  # the seeded callers carry no team
    assert said["attribution"][1].startswith("Cost by model: simulated/llama-3.1-8b-instruct $")
    assert said["outlook"] == ([r for h in report["hybrid"] for r in h["reasons"]]
                               + [f["reason"] for f in sorted(report["flips"], key=lambda f: f["baseline"])]
                               + report["hybrid_notes"])
    assert len(report["hybrid"]) == 4

    _, text = rendered(out, tmp_path)
    for sentence in (*said["drivers"], *said["verdicts"], *said["months"], *said["idle"], *said["energy"]):
        assert re.sub(r"\s+", " ", sentence) in text


def test_a_plan_that_declares_its_gpu_hour_price_is_measured_against_that_price(
        quarter_db: Path, tmp_path: Path) -> None:
    from agent.config import load_settings
    from agent.review import quarterly

    config = tmp_path / "settings.toml"
    config.write_text(PRICED_PLAN + "usd_per_gpu_hour = 2.40\n")
    url = f"sqlite:///{quarter_db}"
    cost = CliRunner().invoke(main, ["cost", "--quarter", "2026Q3", "--db", url, "--config", str(config), "--json"])
    assert cost.exit_code == 0, cost.output
    [plan] = json.loads(cost.stdout)["plan"]
    assert dec(plan["usd_per_gpu_hour"]) == Decimal("2.40")

    engine = open_engine(url)
    report = quarterly.quarter_report(engine, load_settings(config).cost, "2026Q3", now=END)
    engine.dispose()
    [declared] = quarterly.variances(report)
    [opening] = quarterly.variances(report, plan_usd_per_gpu_hour=quarterly.opening_price(report, "2026-Q3"))
    assert declared.plan_usd_per_gpu_hour == Fraction("2.40")
    assert float(opening.plan_usd_per_gpu_hour) == pytest.approx(2.50)  # the quarter's first day, before the change
    # the same actual GPU-hours priced against each plan price: the price effect moves by the difference
    moved = (opening.plan_usd_per_gpu_hour - declared.plan_usd_per_gpu_hour) * declared.actual_gpu_hours_per_month
    assert declared.price_usd - opening.price_usd == moved
    assert declared.volume_usd + declared.price_usd + declared.utilization_usd == declared.total_usd
