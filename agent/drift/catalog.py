"""Exported drift metric families (read from the latest drift_results rows by agent.drift.points)."""

from __future__ import annotations

from agent.metric_spec import MetricSpec

DRIFT_SCORE = "campwatch_drift_score"
DRIFT_DETECTED = "campwatch_drift_detected"
DRIFT_SHARE_DRIFTED = "campwatch_drift_share_drifted"
DRIFT_INSUFFICIENT = "campwatch_drift_insufficient_data"
DRIFT_LAST_RUN = "campwatch_drift_last_run_timestamp_seconds"

DRIFT_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(DRIFT_SCORE, "gauge",
               "Evidently drift score of the feature in the model's latest drift check, current window "
               "against reference. Its meaning depends on the test Evidently chose (p-value: lower means "
               "more drift; distance or ROC AUC: higher means more drift); alert on campwatch_drift_detected.",
               ("host", "model", "feature")),
    MetricSpec(DRIFT_DETECTED, "gauge",
               "1 if Evidently found the feature drifted in the model's latest drift check, else 0.",
               ("host", "model", "feature")),
    MetricSpec(DRIFT_SHARE_DRIFTED, "gauge",
               "Share (0..1) of the model's tested features that drifted in its latest drift check; "
               "0.5 or more is dataset drift by Evidently's rule.",
               ("host", "model")),
    MetricSpec(DRIFT_INSUFFICIENT, "gauge",
               "1 if the model's latest drift check had too few outputs in a window to test (not drift), "
               "else 0.",
               ("host", "model")),
    MetricSpec(DRIFT_LAST_RUN, "gauge",
               "Unix time of the last drift check that wrote results on this host.",
               ("host",)),
)
