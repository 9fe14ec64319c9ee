"""Output drift: per-request descriptors and captured texts, current window against reference,
tested with Evidently in a separate process.

Entry points (import them from their modules; this package imports nothing heavy):
- agent.drift.check.run_drift_check   one check in this process (the CLI)
- agent.drift.worker.DriftWorker      the same in a spawned child (the agent's drift job: `await worker.check()`)
- agent.drift.points.drift_points     exposition points from the latest results (SQL only)
- agent.drift.render.render_drift / agent.drift.results.drift_to_json   output for people / JSON
Only agent.drift.compute imports Evidently."""
