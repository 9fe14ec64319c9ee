"""Exported cost metric families (values from agent.cost.report.report_points)."""

from __future__ import annotations

from agent.metric_spec import MetricSpec

COST_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("campwatch_cost_per_mtok_usd", "gauge",
               "Realized self-hosted cost per million tokens over the cost window; basis=allocation counts "
               "every GPU-hour held (the bill), basis=usage only busy GPU time.", ("basis", "host")),
    MetricSpec("campwatch_cost_energy_per_mtok_usd", "gauge",
               "The energy line of the self-hosted cost per million tokens over the cost window (0 when "
               "energy is in the hourly GPU rate).", ("host",)),
    MetricSpec("campwatch_energy_joules_per_1k_tokens", "gauge",
               "GPU energy (NVML counter) per thousand tokens served over the cost window.", ("host",)),
    MetricSpec("campwatch_api_cost_per_mtok_usd", "gauge",
               "What the same traffic would have cost per million tokens on the API baseline.",
               ("baseline", "host")),
    MetricSpec("campwatch_breakeven_tokens_per_month", "gauge",
               "Monthly token volume at which self-hosting costs the same as the baseline (+Inf: never).",
               ("baseline", "host")),
    MetricSpec("campwatch_camp_holds", "gauge",
               "1 if self-hosting is still cheaper than the baseline at the measured run rate (holds or at "
               "risk), 0 if the API is cheaper.", ("baseline", "host")),
    MetricSpec("campwatch_cost_usd_total", "gauge",
               "Self-hosted cost over the cost window (30 days) by team, on each basis; team=\"(idle GPU)\" is "
               "idle GPU time on the usage basis (or hours with no tokens), team=\"(unattributed)\" tokens served "
               "outside the proxy. The teams of a host add up to its total.", ("basis", "host", "team")),
    MetricSpec("campwatch_team_budget_usd", "gauge",
               "A team's monthly budget (cost.team_budgets_usd_per_month), allocation basis.", ("host", "team")),
    MetricSpec("campwatch_team_cost_month_to_date_usd", "gauge",
               "A team's self-hosted cost so far this calendar month (UTC), allocation basis, on this host.",
               ("host", "team")),
    MetricSpec("campwatch_team_cost_run_rate_usd", "gauge",
               "A team's projected spend for the whole month at this month's pace so far (sum over hosts "
               "and compare with max by (team) of campwatch_team_budget_usd to alert before it is spent).",
               ("host", "team")),
    MetricSpec("campwatch_cost_savings_usd_per_month", "gauge",
               "Monthly savings of self-hosting against the baseline at the measured run rate (negative: a loss).",
               ("baseline", "host")),
    MetricSpec("campwatch_verdict_flip_days", "gauge",
               "Days from the end of the cost window until the monthly volume trend (least squares) crosses the "
               "baseline's break-even and the verdict flips; absent when the trend gives no date (under 3 months "
               "with a week of data, or moving away from break-even). host=fleet for a fleet report.",
               ("baseline", "host")),
)
