"""Realized cost of self-hosting against API baselines, and the camp verdict (docs/cost.md).

Entry points (imported from their modules, so that importing the metric catalog stays cheap):
- agent.cost.ledger.refresh_ledger / recompute_ledger: the agent stores hourly measures (no money)
- agent.cost.report.build_report(engine, settings, since | start/end, host) -> CostReport: reads
  only, prices the measures with the settings in force per day (agent.cost.pricing)
- agent.cost.attribution.attribute(rows, groups, by, teams, weight): showback
- agent.cost.report.report_points(report) -> list[Point]; report_to_json(report) -> dict
- agent.cost.render.render_report(console, report); render_verdict(console, report)
- agent.cost.baselines.resolve_baselines(settings): validates baselines and the price file
"""
