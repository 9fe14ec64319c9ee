"""Quarterly cost review: actual against projected, self-hosted $/Mtok against API baselines, and the
verdict, as DataFrames and figures. Figures come from the cost engine's report (no SQL here)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from matplotlib.figure import Figure
from sqlalchemy import Engine

from agent.config import CostSettings
from agent.cost.report import CostReport, build_report
from agent.errors import ConfigError, Problem
from agent.periods import quarter_period
from agent.review.plots import currency_axis, mark_simulated


def quarter_bounds(quarter: str) -> tuple[datetime, datetime]:
    """'2026-Q4' or '2026Q4' -> (2026-10-01, 2027-01-01) in UTC; ConfigError naming the input otherwise
    (agent.periods parses every report period, for the CLI and here)."""
    period = quarter_period(quarter, "quarter")
    return period.start, period.end


def quarter_report(engine: Engine, settings: CostSettings, quarter: str, host: str | None = None,
                   now: datetime | None = None) -> CostReport:
    """The cost report over the quarter (up to now, for the quarter in progress). Reads only."""
    period = quarter_period(quarter, "quarter")
    until = min(period.end, now or datetime.now(UTC))
    if until <= period.start:
        raise ConfigError("review", [Problem("quarter", f"{quarter} has not started yet")])
    return build_report(engine, settings, host=host, start=period.start, end=until, now=until,
                        period_label=period.label)


def monthly(report: CostReport) -> pd.DataFrame:
    """One row per month: GPU-hours, utilization, tokens, cost on both bases and $/Mtok."""
    rows = [{
        "month": p.label,
        "gpu_hours": p.totals.allocated_gpu_seconds / 3600,
        "utilization": p.totals.utilization,
        "mtok": p.totals.tokens / 1e6,
        "cost_allocation_usd": float(p.allocation.total_usd),
        "cost_usage_usd": float(p.usage.total_usd),
        "usd_per_mtok_allocation": None if p.allocation.per_mtok is None else float(p.allocation.per_mtok),
        "usd_per_mtok_usage": None if p.usage.per_mtok is None else float(p.usage.per_mtok),
        "coverage": p.coverage,
        "partial": p.partial,
    } for p in report.periods if p.period == "month"]
    return pd.DataFrame(rows, columns=["month", "gpu_hours", "utilization", "mtok", "cost_allocation_usd",
                                       "cost_usage_usd", "usd_per_mtok_allocation", "usd_per_mtok_usage",
                                       "coverage", "partial"])


def actual_vs_plan(report: CostReport) -> pd.DataFrame:
    """Per planned quarter: projected and actual monthly tokens and cost (allocation basis)."""
    rows = [{
        "quarter": p.quarter,
        "hours_measured": p.hours,
        "mtok_per_month_plan": p.projected_tokens_per_month / 1e6,
        "mtok_per_month_actual": None if p.actual_tokens_per_month is None else float(p.actual_tokens_per_month) / 1e6,
        "tokens_vs_plan": p.tokens_ratio,
        "usd_per_month_plan": float(p.projected_cost_per_month_usd),
        "usd_per_month_actual": None if p.actual_cost_per_month_usd is None else float(p.actual_cost_per_month_usd),
        "cost_vs_plan": p.cost_ratio,
    } for p in report.plan]
    return pd.DataFrame(rows, columns=["quarter", "hours_measured", "mtok_per_month_plan", "mtok_per_month_actual",
                                       "tokens_vs_plan", "usd_per_month_plan", "usd_per_month_actual",
                                       "cost_vs_plan"])


def baselines(report: CostReport) -> pd.DataFrame:
    """Per API baseline: its $/Mtok on this traffic, the verdict state, savings and break-even."""
    api = {a.baseline: a for a in report.total.api}
    rows = []
    for v in report.total.verdicts:
        a = api.get(v.baseline)
        rows.append({
            "baseline": v.baseline,
            "api_usd_per_mtok": None if a is None or a.per_mtok is None else float(a.per_mtok),
            "priced_from": None if a is None else a.method,
            "state": v.state,
            "self_hosted_usd_per_month": float(v.self_hosted_usd_per_month),
            "api_usd_per_month": None if v.api_usd_per_month is None else float(v.api_usd_per_month),
            "savings_usd_per_month": None if v.savings_usd_per_month is None else float(v.savings_usd_per_month),
            "breakeven_mtok_per_month": None if v.breakeven_tokens_per_month is None
            else float(v.breakeven_tokens_per_month) / 1e6,
            "utilization_needed": v.utilization_needed,
            "reasons": " ".join(v.reasons),
        })
    return pd.DataFrame(rows)


def cost_figure(report: CostReport) -> Figure:
    """Monthly self-hosted cost (allocation and usage bases) with the plan's monthly cost as a line."""
    months = monthly(report)
    fig = Figure(figsize=(9, 3.5))
    ax = fig.add_subplot()
    if not months.empty:
        x = range(len(months))
        ax.bar([i - 0.2 for i in x], months["cost_allocation_usd"], width=0.4, label="allocation (the bill)")
        ax.bar([i + 0.2 for i in x], months["cost_usage_usd"], width=0.4, label="usage (busy GPU time)")
        ax.set_xticks(list(x), months["month"])
    for p in report.plan:
        ax.axhline(float(p.projected_cost_per_month_usd), color="#e45756", linestyle="--",
                   label=f"plan {p.quarter} per month")
    values = [*months["cost_allocation_usd"], *months["cost_usage_usd"],
              *(float(p.projected_cost_per_month_usd) for p in report.plan)]
    currency_axis(ax, [float(v) for v in values])
    ax.set_xlabel("month (UTC)")
    ax.set_ylabel("cost (USD)")
    ax.set_title("Self-hosted cost by month (partial months are partial)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    fig.subplots_adjust(right=0.72, bottom=0.15)
    return mark_simulated(fig, report.total.totals.simulated)


def per_mtok_figure(report: CostReport) -> Figure:
    """Self-hosted $/Mtok by month against each API baseline's $/Mtok for the same traffic."""
    months = monthly(report)
    fig = Figure(figsize=(9, 3.5))
    ax = fig.add_subplot()
    if not months.empty:
        ax.plot(months["month"], months["usd_per_mtok_allocation"], "o-", label="self-hosted (allocation)")
        ax.plot(months["month"], months["usd_per_mtok_usage"], "o--", label="self-hosted (usage)")
    priced = [(a.baseline, a.per_mtok) for a in report.total.api if a.per_mtok is not None]
    for i, (baseline, per_mtok) in enumerate(priced):
        ax.axhline(float(per_mtok), linestyle=":", color=f"C{i + 2}", label=baseline)
    values = [*months["usd_per_mtok_allocation"].dropna(), *months["usd_per_mtok_usage"].dropna(),
              *(float(p) for _, p in priced)]
    currency_axis(ax, [float(v) for v in values])
    ax.set_xlabel("month (UTC)")
    ax.set_ylabel("USD per million tokens")
    ax.set_title("Self-hosted $/Mtok against API baselines")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    fig.subplots_adjust(right=0.72, bottom=0.15)
    return mark_simulated(fig, report.total.totals.simulated)


def figures(report: CostReport) -> dict[str, object]:
    """What the notebook shows, as plain data (floats; None for unknown): the monthly table, the plan
    table, the baselines with their verdicts, and the quarter's totals."""
    def records(frame: pd.DataFrame) -> list[dict[str, object]]:
        return [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
                for row in frame.astype(object).to_dict("records")]

    total = report.total
    return {
        "label": report.period_label,
        "start": report.start.isoformat(), "end": report.end.isoformat(),
        "simulated": total.totals.simulated,
        "tokens": total.totals.tokens,
        "allocated_gpu_hours": total.totals.allocated_gpu_seconds / 3600,
        "cost_allocation_usd": float(total.allocation.total_usd),
        "cost_usage_usd": float(total.usage.total_usd),
        "months": records(monthly(report)),
        "plan": records(actual_vs_plan(report)),
        "baselines": records(baselines(report)),
        "verdicts": [f"[{v.state}] " + " ".join(v.reasons) for v in total.verdicts],
    }
