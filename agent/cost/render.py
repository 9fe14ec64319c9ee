"""The cost report for people: rich tables and the verdict in plain words."""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console
from rich.table import Table

from agent.cost.attribution import Attribution
from agent.cost.report import CostReport, PeriodCost, ScopeReport
from agent.cost.units import MTOK
from agent.cost.verdict import STATE_WORDS, Verdict

_STYLE = {"holds": "green", "at_risk": "yellow", "api_cheaper": "red", "unknown": "dim"}


def _usd(value: Decimal | None, places: int = 2) -> str:
    if value is None:
        return "—"
    return f"-${-value:,.{places}f}" if value < 0 else f"${value:,.{places}f}"


def _rate(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def _mtok(tokens: Decimal | int | None) -> str:
    if tokens is None:
        return "—"
    return f"{Decimal(tokens) / MTOK:,.2f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def render_report(console: Console, report: CostReport, by: str | None = None, hybrid: bool = False) -> None:
    """Summary per host (and fleet), API baselines, periods, plan review, gaps, then the verdict."""
    span = f"{report.start:%Y-%m-%d %H:%M} → {report.end:%Y-%m-%d %H:%M} UTC"
    simulated = " (simulated data)" if report.total.totals.simulated else ""
    label = f"{report.period_label}: " if report.period_label and "→" not in report.period_label else ""
    console.print(f"[bold]campwatch cost[/bold] {label}{span}{simulated}", highlight=False)
    source = report.source
    if source is not None:
        found = ", ".join(source.hosts_found) or "none"
        console.print(f"[dim]read {source.database}, {source.hosts_asked} (found: {found})[/dim]", highlight=False)
    scopes = list(report.hosts)
    if len(scopes) > 1:
        scopes.append(report.total)
    if not scopes:
        console.print("[dim]No cost data in this window: no stored measures, GPU samples, engine scrapes or proxy "
                      "records.[/dim]", highlight=False)
        if source is not None:
            for table, hosts in source.elsewhere:
                console.print(f"[dim]  {table}: {', '.join(hosts) if hosts else 'empty'}[/dim]", highlight=False)
        return
    console.print(_summary_table(scopes))
    console.print(_energy_table(scopes))
    console.print(_api_table(report.total))
    if report.baselines:
        console.print(_baseline_table(report))
    if report.price_segments:
        console.print(_prices_table(report))
    months = [p for p in report.periods if p.period in ("month", "quarter")]
    days = [p for p in report.periods if p.period == "day"]
    console.print(_period_table("By day" if len(days) <= 14 else "By month and quarter",
                                days if len(days) <= 14 else months))
    for attribution in report.attribution:
        if attribution.by == by:
            console.print(_attribution_table(attribution))
    if any(b.budget_usd is not None for b in report.budgets):
        console.print(_budget_table(report))
    if report.plan:
        console.print(_plan_table(report))
    for gap in report.gaps:
        console.print(f"[yellow]gap[/yellow] {gap.message}")
    render_verdict(console, report)
    if hybrid:
        render_hybrid(console, report)


def render_hybrid(console: Console, report: CostReport) -> None:
    """API only, self-host only and the cheapest mix per baseline, monthly."""
    console.print(f"\n[bold]Hybrid[/bold] ({report.total.scope}): self-host the base load, the overflow on the API")
    if report.hybrid:
        table = Table(show_header=True, header_style="bold")
        for column in ("baseline", "API only $/mo", "self-host only $/mo", "GPUs", "best mix $/mo", "mix GPUs",
                       "share to API", "saving vs today $/mo"):
            table.add_column(column, justify="left" if column == "baseline" else "right")
        for h in report.hybrid:
            table.add_row(h.baseline, _usd(h.api_only.usd_per_month if h.api_only else None),
                          _usd(h.self_only.usd_per_month), str(h.self_only.gpus), _usd(h.best.usd_per_month),
                          str(h.best.gpus), _pct(h.best.api_share), _usd(h.saving_usd_per_month))
        console.print(table)
        for h in report.hybrid:
            console.print(" ".join(h.reasons), highlight=False)
    for note in report.hybrid_notes:
        console.print(f"[dim]{note}[/dim]", highlight=False)


def render_verdict(console: Console, report: CostReport) -> None:
    """The camp verdict per baseline for the report's whole scope, in plain words."""
    scope = report.total
    console.print(f"\n[bold]Camp verdict[/bold] ({scope.scope}): is self-hosting still the right call?")
    if not scope.verdicts:
        console.print("[dim]No verdict: no GPU time was measured in this window.[/dim]")
        return
    table = Table(show_header=True, header_style="bold")
    for column in ("baseline", "state", "self-hosted $/mo", "API $/mo", "savings $/mo", "break-even Mtok/mo",
                   "util. needed", "headroom"):
        table.add_column(column, justify="left" if column in ("baseline", "state") else "right")
    for v in scope.verdicts:
        table.add_row(v.baseline, f"[{_STYLE[v.state]}]{STATE_WORDS[v.state]}[/]",
                      _usd(v.self_hosted_usd_per_month), _usd(v.api_usd_per_month), _usd(v.savings_usd_per_month),
                      _breakeven(v), _pct(v.utilization_needed), _pct(v.headroom))
    console.print(table)
    # Sentences every verdict shares (data gaps, regulated data) are said once, after the others.
    shared = [r for r in scope.verdicts[0].reasons if all(r in v.reasons for v in scope.verdicts[1:])]
    for v in scope.verdicts:
        own = [r for r in v.reasons if r not in shared]
        if own:  # a baseline with nothing of its own to say gets no empty line
            console.print(f"[{_STYLE[v.state]}]{v.baseline}[/]: " + " ".join(own))
    for reason in shared:
        console.print(reason)
    if report.flips:
        console.print("[bold]When the answer flips[/bold] (monthly volume trend against break-even):")
        for flip in report.flips:
            console.print(flip.reason, highlight=False)
    basis = {v.capacity_basis for v in scope.verdicts if v.utilization_needed is not None}
    if basis:
        words = ("measured capacity at saturation within the TTFT and inter-token SLOs" if basis == {"measured"}
                 else "the NVML utilization scaled linearly (no measured capacity)")
        console.print(f"[dim]util. needed rests on {words}.[/dim]", highlight=False)
        for c in report.capacities:
            console.print(f"[dim]{c.reason}[/dim]", highlight=False)


def _breakeven(v: Verdict) -> str:
    if v.breakeven_tokens_per_month is not None:
        return _mtok(v.breakeven_tokens_per_month)
    return "never" if not v.breakeven_reachable and v.api_usd_per_month is not None else "—"


def _summary_table(scopes: list[ScopeReport]) -> Table:
    table = Table(title="Self-hosted cost", show_header=True, header_style="bold")
    for column in ("scope", "GPU-h held", "util.", "Mtok in/out", "GPU $", "energy $", "overhead $",
                   "$/Mtok alloc.", "$/Mtok usage", "in/out $/Mtok alloc.", "tokens from"):
        table.add_column(column, justify="left" if column in ("scope", "tokens from") else "right")
    for s in scopes:
        t = s.totals
        sources = ", ".join(f"{name} {hours}h" for name, hours in t.hours_by_source)
        table.add_row(
            s.scope, f"{t.allocated_gpu_seconds / 3600:,.1f}", _pct(t.utilization),
            f"{_mtok(t.prompt_tokens)}/{_mtok(t.generation_tokens)}", _usd(t.gpu_usd), _usd(t.energy_usd),
            _usd(t.overhead_usd), _rate(s.allocation.per_mtok), _rate(s.usage.per_mtok),
            f"{_rate(s.allocation.input_per_mtok)}/{_rate(s.allocation.output_per_mtok)}", sources,
        )
    return table


def _energy_table(scopes: list[ScopeReport]) -> Table:
    table = Table(title="Energy", show_header=True, header_style="bold")
    for column in ("scope", "kWh (GPU)", "J per 1k tokens", "energy $", "energy $/Mtok"):
        table.add_column(column, justify="left" if column == "scope" else "right")
    for s in scopes:
        t = s.totals
        j = t.joules_per_1k_tokens
        table.add_row(s.scope, f"{t.energy_joules / 3.6e6:,.2f}", "—" if j is None else f"{j:,.1f}",
                      _usd(t.energy_usd), _rate(s.allocation.energy_per_mtok))
    return table


def _api_table(scope: ScopeReport) -> Table:
    table = Table(title="Same traffic on managed APIs", show_header=True, header_style="bold")
    for column in ("baseline", "priced from", "requests", "$/Mtok", "in/out $/Mtok", "API cost", "coverage",
                   "prices applied"):
        table.add_column(column, justify="left" if column in ("baseline", "priced from", "prices applied")
                         else "right")
    for a in scope.api:
        shares = a.price_shares
        applied = ", ".join(f"{name} {share:.0%}" for name, share in shares) if len(shares) > 1 or (
            shares and shares[0][0] != "standard") else "standard"
        table.add_row(a.baseline, a.method, f"{a.priced_requests:,}", _rate(a.per_mtok),
                      f"{_rate(a.input_per_mtok)}/{_rate(a.output_per_mtok)}", _usd(a.cost_usd), _pct(a.coverage),
                      applied)
    return table


def _baseline_table(report: CostReport) -> Table:
    at = report.baselines[0].rates_at
    when = f" at {at:%Y-%m-%d %H:%M} UTC" if at is not None else ""
    table = Table(title=f"API baselines: tier and effective $/Mtok{when} (discount and token ratio applied)",
                  show_header=True, header_style="bold")
    for column in ("baseline", "tier", "token ratio", "discount", "input", "output", "cached", "cache write",
                   "tier priced from"):
        table.add_column(column, justify="left" if column in ("baseline", "tier", "tier priced from") else "right")
    for b in report.baselines:
        e = b.effective
        rates = (_rate(e.input_mtok), _rate(e.output_mtok), _rate(e.cache_read_mtok), _rate(e.cache_write_mtok)) \
            if e is not None else ("—",) * 4
        table.add_row(b.id, b.tier, f"{b.token_ratio:g}", f"{b.discount:.0%}", *rates,
                      b.tier_pricing if e is not None else f"{b.tier_pricing} ({b.rates_error})")
    return table


def _prices_table(report: CostReport) -> Table:
    table = Table(title="Self-hosted prices applied (current settings, by effective date)", show_header=True,
                  header_style="bold")
    for column in ("host", "from", "to", "hours", "prices"):
        table.add_column(column, justify="right" if column == "hours" else "left")
    for seg in report.price_segments:
        table.add_row(seg.host, f"{seg.start:%Y-%m-%d %H:00}", f"{seg.end:%Y-%m-%d %H:00}", f"{seg.hours:,}",
                      seg.description)
    return table


def _period_table(title: str, periods: list[PeriodCost]) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    for column in ("period", "coverage", "GPU-h", "util.", "Mtok", "cost (alloc.)", "cost (usage)", "$/Mtok alloc.",
                   "$/Mtok usage"):
        table.add_column(column, justify="left" if column == "period" else "right")
    for p in periods:
        coverage = f"{p.coverage:.0%} of {p.hours_in_period:,} h" + (" (partial)" if p.partial else "")
        table.add_row(p.label, coverage, f"{p.totals.allocated_gpu_seconds / 3600:,.1f}",
                      _pct(p.totals.utilization), _mtok(p.totals.tokens), _usd(p.allocation.total_usd),
                      _usd(p.usage.total_usd), _rate(p.allocation.per_mtok), _rate(p.usage.per_mtok))
    return table


def _plan_table(report: CostReport) -> Table:
    table = Table(title="Plan review (monthly run rates)", show_header=True, header_style="bold")
    for column in ("quarter", "hours", "Mtok/mo plan", "Mtok/mo actual", "vs plan", "$/mo plan", "$/mo actual",
                   "vs plan"):
        table.add_column(column, justify="left" if column == "quarter" else "right")
    for p in report.plan:
        table.add_row(p.quarter, str(p.hours), _mtok(p.projected_tokens_per_month), _mtok(p.actual_tokens_per_month),
                      _pct(p.tokens_ratio), _usd(p.projected_cost_per_month_usd), _usd(p.actual_cost_per_month_usd),
                      _pct(p.cost_ratio))
    return table


def _attribution_table(a: Attribution) -> Table:
    table = Table(title=f"Cost by {a.by} (shares add up to {_usd(a.total_usd)}; idle GPU time apart on the "
                        "usage basis)", show_header=True, header_style="bold")
    for column in (a.by, "Mtok", "requests", "cost (alloc.)", "share", "cost (usage)"):
        table.add_column(column, justify="left" if column == a.by else "right")
    for s in a.shares:
        share = float(s.allocation_usd / a.total_usd) if a.total_usd else None
        table.add_row(s.key, _mtok(s.tokens), f"{s.requests:,}", _usd(s.allocation_usd), _pct(share),
                      _usd(s.usage_usd))
    return table


def _budget_table(report: CostReport) -> Table:
    table = Table(title="Team budgets (this month, allocation basis)", show_header=True, header_style="bold")
    for column in ("team", "budget $/mo", "month to date", "run rate $/mo", "over budget"):
        table.add_column(column, justify="left" if column == "team" else "right")
    for b in report.budgets:
        over = "—" if b.over_budget is None else ("[red]yes[/]" if b.over_budget else "no")
        table.add_row(b.team, _usd(b.budget_usd), _usd(b.month_to_date_usd), _usd(b.run_rate_usd), over)
    return table
