"""Realized cost of self-hosting against API baselines, and the camp verdict (docs/cost.md).

Entry points (imported from their modules, so that importing the metric catalog stays cheap):
- agent.cost.ledger.recompute_ledger(engine, settings, start, end, host=None) -> int
- agent.cost.report.build_report(engine, settings, since, host) -> CostReport
- agent.cost.report.report_points(report) -> list[Point]; report_to_json(report) -> dict
- agent.cost.render.render_report(console, report); render_verdict(console, report)
- agent.cost.baselines.resolve_baselines(settings): validates baselines and the price file
"""
