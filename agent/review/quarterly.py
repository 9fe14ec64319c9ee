"""Quarterly cost review: actual against projected, self-hosted $/Mtok against API baselines, and the
verdict, as DataFrames and figures. Figures come from the cost engine's report (no SQL here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sqlalchemy import Engine

from agent.config import CostSettings
from agent.cost.attribution import IDLE, UNASSIGNED, UNATTRIBUTED, Attribution
from agent.cost.report import CostReport, PeriodCost, build_report, period_key
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
    return _finish_monthly(fig, ax, values, report, ylabel="cost (USD)",
                           title="Self-hosted cost by month (partial months are partial)")


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
    return _finish_monthly(fig, ax, values, report, ylabel="USD per million tokens",
                           title="Self-hosted $/Mtok against API baselines")


def _finish_monthly(fig: Figure, ax: Axes, values: Sequence[float], report: CostReport, *, ylabel: str,
                    title: str) -> Figure:
    """The month figures' common ending: a currency axis over every plotted value, month labels, the
    legend beside the plot and the simulated mark."""
    currency_axis(ax, [float(v) for v in values])
    ax.set_xlabel("month (UTC)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
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
        "usd_per_mtok_allocation": None if total.allocation.per_mtok is None else float(total.allocation.per_mtok),
        "usd_per_mtok_usage": None if total.usage.per_mtok is None else float(total.usage.per_mtok),
        "idle_usd": float(total.allocation.gpu_usd - total.usage.gpu_usd),
        "energy_kwh": total.totals.energy_joules / 3.6e6,
        "joules_per_1k_tokens": total.totals.joules_per_1k_tokens,
        "months_vs_plan": [{"month": m.month, "tokens_per_month": m.tokens_per_month,
                            "cost_per_month_usd": None if m.cost_per_month_usd is None else float(m.cost_per_month_usd),
                            "tokens_vs_plan": m.tokens_vs_plan, "cost_vs_plan": m.cost_vs_plan}
                           for m in months_against_plan(report)],
        "variance": records(variance_frame(variances(report))),
        "sentences": sentences(report),
    }


# --- computed sentences: pure functions on plain values (tested with hand-computed cases) -----------

HOURS_PER_MONTH = 730
"""A month of run rate, as in the cost engine (agent.cost.units.MONTH_SECONDS)."""


def _usd(value: float | Decimal | Fraction) -> str:
    amount = float(value)
    return f"-${-amount:,.2f}" if amount < 0 else f"${amount:,.2f}"


def _signed_usd(value: float | Decimal | Fraction) -> str:
    amount = float(value)
    return f"+${amount:,.2f}" if amount >= 0 else f"-${-amount:,.2f}"


def _mtok(tokens: float | Decimal | int | Fraction) -> str:
    return f"{float(tokens) / 1e6:,.1f}"


@dataclass(frozen=True, slots=True)
class MonthAgainstPlan:
    """One calendar month's tokens and cost (allocation basis), as measured and as a 730-hour run
    rate (scaled by the month's hours with data), against the plan of the quarter it falls in."""

    month: str
    hours_with_data: int
    hours_in_month: int
    tokens: int
    cost_usd: Decimal
    plan_quarter: str
    plan_tokens_per_month: int | None
    plan_cost_per_month_usd: Decimal | None

    @property
    def tokens_per_month(self) -> float | None:
        return self.tokens * HOURS_PER_MONTH / self.hours_with_data if self.hours_with_data else None

    @property
    def cost_per_month_usd(self) -> Decimal | None:
        return self.cost_usd * HOURS_PER_MONTH / self.hours_with_data if self.hours_with_data else None

    @property
    def tokens_vs_plan(self) -> float | None:
        rate = self.tokens_per_month
        return rate / self.plan_tokens_per_month if rate is not None and self.plan_tokens_per_month else None

    @property
    def cost_vs_plan(self) -> float | None:
        rate = self.cost_per_month_usd
        return float(rate / self.plan_cost_per_month_usd) if rate is not None and self.plan_cost_per_month_usd \
            else None


def month_sentence(m: MonthAgainstPlan) -> str:
    """What one month served and cost, and how its pace compares with the plan."""
    coverage = ("full month" if m.hours_with_data >= m.hours_in_month
                else f"partial: {m.hours_with_data:,} of {m.hours_in_month:,} hours with data")
    head = f"{m.month} ({coverage}): {_mtok(m.tokens)} Mtok served for {_usd(m.cost_usd)}"
    tokens_rate, cost_rate = m.tokens_per_month, m.cost_per_month_usd
    if tokens_rate is None or cost_rate is None:
        return head + "."
    pace = f"; at {HOURS_PER_MONTH} hours a month that is {_mtok(tokens_rate)} Mtok/month and {_usd(cost_rate)}/month"
    if m.plan_tokens_per_month is None or m.plan_cost_per_month_usd is None:
        return head + pace + f" (no plan for {m.plan_quarter})."
    tokens_vs, cost_vs = m.tokens_vs_plan, m.cost_vs_plan
    tokens_part = (f"{tokens_vs:.0%} of the plan's {_mtok(m.plan_tokens_per_month)}" if tokens_vs is not None
                   else f"the plan has {_mtok(m.plan_tokens_per_month)}")
    cost_part = (f"{cost_vs:.0%} of the plan's {_usd(m.plan_cost_per_month_usd)}" if cost_vs is not None
                 else f"the plan has {_usd(m.plan_cost_per_month_usd)}")
    over = " (over plan)" if cost_vs is not None and cost_vs > 1 else ""
    return head + pace + f" ({tokens_part}; {cost_part}){over}."


def per_mtok_sentence(baseline: str, api_per_mtok: Decimal | None, allocation_per_mtok: Decimal | None,
                      usage_per_mtok: Decimal | None) -> str:
    """Self-hosted $/Mtok on both bases against one API baseline's $/Mtok for the same traffic."""
    if allocation_per_mtok is None or usage_per_mtok is None:
        return f"{baseline}: no self-hosted $/Mtok (no GPU time or no tokens measured)."
    own = (f"Self-hosted {_usd(allocation_per_mtok)}/Mtok on the allocation basis (every GPU-hour held) and "
           f"{_usd(usage_per_mtok)}/Mtok on the usage basis (busy GPU time only)")
    if api_per_mtok is None or api_per_mtok <= 0:
        return own + f"; {baseline} could not price this traffic."

    def compare(own_rate: Decimal) -> str:
        if own_rate <= 0:
            return "free"
        ratio = float(api_per_mtok / own_rate)
        return f"{ratio:,.1f}x cheaper" if ratio >= 1 else f"{1 / ratio:,.1f}x dearer"

    return (own + f", against {_usd(api_per_mtok)}/Mtok on {baseline}: self-hosting is "
            f"{compare(allocation_per_mtok)} on allocation, {compare(usage_per_mtok)} on usage.")


STATE_PHRASES = {"holds": "self-hosting holds", "at_risk": "self-hosting holds, at risk",
                 "api_cheaper": "the API is cheaper", "unknown": "no verdict"}


def verdict_sentence(baseline: str, state: str, savings_usd_per_month: Decimal | None,
                     breakeven_tokens_per_month: Decimal | None, reachable: bool,
                     tokens_per_month: Decimal | None, reasons: tuple[str, ...] = ()) -> str:
    """The verdict against one baseline, its break-even and where the quarter's volume stands."""
    if state == "unknown" or tokens_per_month is None:
        why = reasons[0] if reasons else "nothing to compare"
        return f"{baseline}: no verdict ({why.rstrip('.')})."
    head = f"{baseline}: {STATE_PHRASES.get(state, state)}"
    if savings_usd_per_month is not None:
        head += (f", saving {_usd(savings_usd_per_month)}/month" if savings_usd_per_month >= 0
                 else f", costing {_usd(-savings_usd_per_month)}/month more than the API")
    volume = f"the quarter runs at {_mtok(tokens_per_month)} Mtok/month"
    if breakeven_tokens_per_month is None:
        cause = "" if reachable else " (the API costs less per token than the energy alone)"
        return head + f". No volume breaks even at these prices{cause}; {volume}."
    if breakeven_tokens_per_month <= 0:
        return head + f". Any volume breaks even (no fixed cost); {volume}."
    ratio = float(tokens_per_month / breakeven_tokens_per_month)
    where = (f"{ratio:,.2f}x break-even: traffic can fall {1 - 1 / ratio:.0%} before the API is cheaper"
             if ratio >= 1 else f"{ratio:.0%} of break-even: it must grow {1 / ratio:,.2f}x to break even")
    return head + f". Break-even is {_mtok(breakeven_tokens_per_month)} Mtok/month; {volume}, {where}."


def idle_sentence(allocation_gpu_usd: Decimal, usage_gpu_usd: Decimal, bill_usd: Decimal,
                  utilization: float | None) -> str:
    """What the GPU time held but not busy cost (allocation minus usage GPU line)."""
    idle = allocation_gpu_usd - usage_gpu_usd
    share = f" ({float(idle / bill_usd):.0%} of the {_usd(bill_usd)} bill)" if bill_usd > 0 else ""
    busy = f": the GPUs were busy {utilization:.0%} of the GPU time observed" if utilization is not None else ""
    return f"Idle GPU time cost {_usd(idle)}{share}{busy}."


def energy_sentence(energy_joules: float, tokens: int, energy_usd: Decimal) -> str:
    """Energy drawn, per thousand tokens, and how it is paid."""
    if energy_joules <= 0:
        return "No GPU energy was measured in this quarter."
    kwh = energy_joules / 3.6e6
    per_1k = f", {energy_joules * 1000 / tokens:,.1f} J per 1k tokens" if tokens > 0 else ""
    paid = (f"; energy cost {_usd(energy_usd)}, paid per kWh" if energy_usd > 0
            else "; energy is in the hourly GPU rate, not a separate line")
    return f"The GPUs drew {kwh:,.1f} kWh{per_1k}{paid}."


@dataclass(frozen=True, slots=True)
class PlanVariance:
    """The difference between the actual and the planned monthly cost, split into three effects
    that add up to it exactly (rational arithmetic, no rounding):

        C = V x h x r     (cost/month = tokens/month x GPU-hours per token x $ per GPU-hour held)

    The plan gives V_p and C_p; its price r_p is the $ per GPU-hour it assumed, so its GPU-hours
    per token are h_p = C_p / (V_p x r_p). Actual: V_a, C_a and the GPU-hours held H_a, so
    r_a = C_a / H_a (all-in: GPU line, energy and overhead per GPU-hour held) and h_a = H_a / V_a.

        volume      = (V_a - V_p) x C_p / V_p        more or fewer tokens at the plan's unit cost
        price       = (r_a - r_p) x H_a              a dearer or cheaper GPU-hour, on the hours held
        utilization = (h_a - h_p) x r_p x V_a        more or fewer GPU-hours per token than planned
                                                      (idle or slow GPUs), at the plan's price

    volume + price + utilization = r_a H_a - C_p = C_a - C_p."""

    quarter: str
    plan_tokens_per_month: Fraction
    plan_cost_per_month_usd: Fraction
    plan_usd_per_gpu_hour: Fraction
    actual_tokens_per_month: Fraction
    actual_cost_per_month_usd: Fraction
    actual_gpu_hours_per_month: Fraction

    @property
    def plan_usd_per_token(self) -> Fraction:
        return self.plan_cost_per_month_usd / self.plan_tokens_per_month

    @property
    def plan_gpu_hours_per_token(self) -> Fraction:
        return self.plan_usd_per_token / self.plan_usd_per_gpu_hour

    @property
    def actual_usd_per_gpu_hour(self) -> Fraction:
        return self.actual_cost_per_month_usd / self.actual_gpu_hours_per_month

    @property
    def actual_gpu_hours_per_token(self) -> Fraction:
        return self.actual_gpu_hours_per_month / self.actual_tokens_per_month

    @property
    def total_usd(self) -> Fraction:
        return self.actual_cost_per_month_usd - self.plan_cost_per_month_usd

    @property
    def volume_usd(self) -> Fraction:
        return (self.actual_tokens_per_month - self.plan_tokens_per_month) * self.plan_usd_per_token

    @property
    def price_usd(self) -> Fraction:
        return (self.actual_usd_per_gpu_hour - self.plan_usd_per_gpu_hour) * self.actual_gpu_hours_per_month

    @property
    def utilization_usd(self) -> Fraction:
        return ((self.actual_gpu_hours_per_token - self.plan_gpu_hours_per_token) * self.plan_usd_per_gpu_hour
                * self.actual_tokens_per_month)

    def effects(self) -> tuple[tuple[str, Fraction], ...]:
        """(effect, USD per month), largest in size first."""
        parts = (("volume", self.volume_usd), ("price", self.price_usd), ("utilization", self.utilization_usd))
        return tuple(sorted(parts, key=lambda p: -abs(p[1])))


Amount = Decimal | int | float | Fraction


def plan_variance(quarter: str, *, plan_tokens_per_month: Amount, plan_cost_per_month_usd: Amount,
                  plan_usd_per_gpu_hour: Amount, actual_tokens_per_month: Amount,
                  actual_cost_per_month_usd: Amount, actual_gpu_hours_per_month: Amount) -> PlanVariance:
    """The variance of one planned quarter (see PlanVariance). ValueError naming the input when a
    volume, price or GPU-hours is not positive (the effects are undefined then)."""
    values = {"plan_tokens_per_month": plan_tokens_per_month, "plan_cost_per_month_usd": plan_cost_per_month_usd,
              "plan_usd_per_gpu_hour": plan_usd_per_gpu_hour, "actual_tokens_per_month": actual_tokens_per_month,
              "actual_cost_per_month_usd": actual_cost_per_month_usd,
              "actual_gpu_hours_per_month": actual_gpu_hours_per_month}
    exact = {name: Fraction(value) for name, value in values.items()}
    for name in ("plan_tokens_per_month", "plan_usd_per_gpu_hour", "actual_tokens_per_month",
                 "actual_gpu_hours_per_month"):
        if exact[name] <= 0:
            raise ValueError(f"{name}: expected a positive number, got {values[name]}")
    for name in ("plan_cost_per_month_usd", "actual_cost_per_month_usd"):
        if exact[name] < 0:
            raise ValueError(f"{name}: expected a cost >= 0, got {values[name]}")
    return PlanVariance(quarter, **exact)


def variance_sentence(v: PlanVariance) -> str:
    """The difference from plan and its drivers, largest first."""
    total = v.total_usd
    direction = "over" if total > 0 else "under" if total < 0 else "exactly on"
    head = (f"{v.quarter} runs at {_usd(v.actual_cost_per_month_usd)}/month against the plan's "
            f"{_usd(v.plan_cost_per_month_usd)}: {_usd(abs(total))}/month {direction} plan" if total
            else f"{v.quarter} runs exactly on the plan's {_usd(v.plan_cost_per_month_usd)}/month")
    detail = {
        "volume": f"{float(v.actual_tokens_per_month / v.plan_tokens_per_month):.0%} of the planned "
                  f"{_mtok(v.plan_tokens_per_month)} Mtok/month",
        "price": f"{_usd(v.actual_usd_per_gpu_hour)} per GPU-hour held against the plan's "
                 f"{_usd(v.plan_usd_per_gpu_hour)}",
        "utilization": f"{float(v.actual_gpu_hours_per_token * 1_000_000):,.3f} GPU-hours per Mtok against the "
                       f"plan's {float(v.plan_gpu_hours_per_token * 1_000_000):,.3f}",
    }
    parts = "; ".join(f"{name} {_signed_usd(usd)} ({detail[name]})" for name, usd in v.effects())
    largest = v.effects()[0][0]
    return f"{head}. Drivers, largest first: {parts}. The largest driver is {largest}."


def attribution_sentence(by: str, shares: Sequence[tuple[str, Decimal]], total_usd: Decimal,
                         top: int = 3) -> str:
    """The cost by team or model, largest first, with the idle and unattributed lines; says so when
    nothing could be attributed (no proxy records with that dimension)."""
    unnamed = (IDLE, UNATTRIBUTED, UNASSIGNED)
    named = [(k, usd) for k, usd in shares if k not in unnamed]
    rest = [(k, usd) for k, usd in shares if k in unnamed and usd]

    def part(key: str, usd: Decimal) -> str:
        share = f" ({float(usd / total_usd):.0%})" if total_usd > 0 else ""
        return f"{key} {_usd(usd)}{share}"

    if not named:
        how = " with a team header or cost.teams" if by == "team" else ""
        lines = f" ({', '.join(part(k, usd) for k, usd in rest)})" if rest else ""
        return (f"No cost by {by} for this quarter: no proxy request records name a {by} for its tokens "
                f"(route traffic through the capture proxy{how}){lines}.")

    shown = [part(k, usd) for k, usd in named[:top]]
    if len(named) > top:
        others = sum((usd for _, usd in named[top:]), Decimal(0))
        shown.append(part(f"{len(named) - top} more", others))
    shown += [part(k, usd) for k, usd in rest]
    return f"Cost by {by}: " + ", ".join(shown) + "."


# --- the sentences of one report (glue: CostReport -> the pure functions above) --------------------

def months_against_plan(report: CostReport) -> list[MonthAgainstPlan]:
    """Each month of the report against the plan of its quarter (the report's plan reviews)."""
    planned = {p.quarter: p for p in report.plan}
    out = []
    for p in report.periods:
        if p.period != "month":
            continue
        quarter = period_key("quarter", p.start)[0]
        plan = planned.get(quarter)
        out.append(MonthAgainstPlan(p.label, p.hours_with_data, p.hours_in_period, p.totals.tokens,
                                    p.allocation.total_usd, quarter,
                                    None if plan is None else plan.projected_tokens_per_month,
                                    None if plan is None else plan.projected_cost_per_month_usd))
    return out


def _usd_per_gpu_hour(period: PeriodCost) -> Fraction | None:
    hours = Fraction(period.totals.allocated_gpu_seconds) / 3600
    return Fraction(period.allocation.total_usd) / hours if hours > 0 else None


def opening_price(report: CostReport, quarter: str) -> Fraction | None:
    """$ per GPU-hour held (all-in) on the quarter's first day with data: the price the plan is
    taken to assume, so a price change during the quarter shows as the price effect."""
    days = [p for p in report.periods if p.period == "day" and period_key("quarter", p.start)[0] == quarter]
    for day in days:
        rate = _usd_per_gpu_hour(day)
        if rate is not None:
            return rate
    return None


def variances(report: CostReport, plan_usd_per_gpu_hour: Amount | None = None) -> list[PlanVariance]:
    """The variance of each planned quarter with data. Actual run rates are the plan review's (the
    same as `campwatch cost --json`'s plan[]); the GPU-hours held per month are its cost over the
    quarter's all-in $ per GPU-hour; the plan price is `plan_usd_per_gpu_hour`, else the plan's own
    (cost.plan usd_per_gpu_hour), else the quarter's opening price."""
    quarters = {p.label: p for p in report.periods if p.period == "quarter"}
    out = []
    for review in report.plan:
        period = quarters.get(review.quarter)
        if period is None or review.actual_tokens_per_month is None or review.actual_cost_per_month_usd is None:
            continue
        rate = _usd_per_gpu_hour(period)
        declared = plan_usd_per_gpu_hour if plan_usd_per_gpu_hour is not None else review.usd_per_gpu_hour
        price = Fraction(declared) if declared is not None else opening_price(report, review.quarter)
        if rate is None or rate <= 0 or price is None or price <= 0 or review.projected_tokens_per_month <= 0 \
                or review.actual_tokens_per_month <= 0:
            continue
        out.append(plan_variance(review.quarter, plan_tokens_per_month=review.projected_tokens_per_month,
                                 plan_cost_per_month_usd=review.projected_cost_per_month_usd,
                                 plan_usd_per_gpu_hour=price,
                                 actual_tokens_per_month=review.actual_tokens_per_month,
                                 actual_cost_per_month_usd=review.actual_cost_per_month_usd,
                                 actual_gpu_hours_per_month=Fraction(review.actual_cost_per_month_usd) / rate))
    return out


def variance_frame(found: Sequence[PlanVariance]) -> pd.DataFrame:
    return pd.DataFrame([{"quarter": v.quarter, "plan_usd_per_month": float(v.plan_cost_per_month_usd),
                          "actual_usd_per_month": float(v.actual_cost_per_month_usd),
                          "difference_usd": float(v.total_usd), "volume_usd": float(v.volume_usd),
                          "price_usd": float(v.price_usd), "utilization_usd": float(v.utilization_usd)}
                         for v in found],
                        columns=["quarter", "plan_usd_per_month", "actual_usd_per_month", "difference_usd",
                                 "volume_usd", "price_usd", "utilization_usd"])


def sentences(report: CostReport, plan_usd_per_gpu_hour: Amount | None = None) -> dict[str, list[str]]:
    """Every computed sentence the notebook prints, by section."""
    total = report.total
    t = total.totals
    api = {a.baseline: a for a in total.api}
    tokens_per_month = total.run_rate.tokens_per_month if total.run_rate is not None else None
    found = variances(report, plan_usd_per_gpu_hour)
    attributed: dict[str, Attribution] = {a.by: a for a in report.attribution}
    flips = {f.baseline: f for f in report.flips}
    outlook = [reason for h in report.hybrid for reason in h.reasons]
    outlook += [flips[b].reason for b in sorted(flips)]
    outlook += list(report.hybrid_notes)
    by: list[str] = []
    for dimension in ("team", "model"):
        a = attributed.get(dimension)
        by.append(attribution_sentence(dimension, [(s.key, s.allocation_usd) for s in a.shares], a.total_usd)
                  if a is not None else f"No cost by {dimension}: the report kept no request groups.")
    label = report.period_label or "this window"
    return {
        "months": [month_sentence(m) for m in months_against_plan(report)]
        or [f"No month of {label} has cost data: nothing was measured yet."],
        "per_mtok": [per_mtok_sentence(a.baseline, a.per_mtok, total.allocation.per_mtok, total.usage.per_mtok)
                     for a in total.api],
        "verdicts": [verdict_sentence(v.baseline, v.state, v.savings_usd_per_month, v.breakeven_tokens_per_month,
                                      v.breakeven_reachable, tokens_per_month, v.reasons)
                     for v in total.verdicts if v.baseline in api]
        or [f"No verdict for {label}: it needs GPU time measured (GPU telemetry) and a priced API baseline."],
        "idle": [idle_sentence(total.allocation.gpu_usd, total.usage.gpu_usd, total.allocation.total_usd,
                               t.utilization)],
        "energy": [energy_sentence(t.energy_joules, t.tokens, total.allocation.energy_usd)],
        "drivers": [variance_sentence(v) for v in found] or ["No difference from plan to explain: no planned "
                                                             "quarter has data (add [[cost.plan]] or --plan)."],
        "attribution": by,
        "outlook": outlook,
    }
