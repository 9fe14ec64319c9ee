"""Exposition points from the latest drift results: SQL only, no Evidently, cheap enough to call on
every exposition refresh."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from agent.drift.catalog import DRIFT_DETECTED, DRIFT_INSUFFICIENT, DRIFT_LAST_RUN, DRIFT_SCORE, DRIFT_SHARE_DRIFTED
from agent.drift.results import is_insufficient, is_summary, last_run_at, latest_results
from agent.samples import Point, labels


def drift_points(engine: Engine, host: str, *, stale_after: timedelta | None = timedelta(days=1)) -> list[Point]:
    """Per model of `host`, the latest check's per-feature score and verdict, its share of drifted
    features (or insufficient_data=1 when it could not test), and the host's last run time.
    Models whose latest check is older than `stale_after` before the host's last run are dropped,
    so a retired model's alert resolves."""
    last = last_run_at(engine, host)
    if last is None:
        return []
    points = [Point(DRIFT_LAST_RUN, last.timestamp(), labels(host=host))]
    for result in latest_results(engine, host, stale_after=stale_after):
        if is_summary(result):
            model_labels = labels(host=host, model=result.model)
            insufficient = is_insufficient(result)
            points.append(Point(DRIFT_INSUFFICIENT, 1.0 if insufficient else 0.0, model_labels))
            if not insufficient:
                points.append(Point(DRIFT_SHARE_DRIFTED, result.score, model_labels))
            continue
        feature_labels = labels(host=host, model=result.model, feature=result.feature)
        points.append(Point(DRIFT_SCORE, result.score, feature_labels))
        points.append(Point(DRIFT_DETECTED, 1.0 if result.drifted else 0.0, feature_labels))
    return points
