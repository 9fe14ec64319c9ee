"""One drift check: for each model, load both windows, test each part with Evidently, and turn the
verdicts into DriftResult rows (one per tested feature, plus one summary row per model).

A window with fewer than `min_rows` outputs gives an "insufficient data" summary: not drift, not an
error. Evidently is imported only when some part has enough data to test."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from agent.config import CaptureSettings, DriftSettings
from agent.drift.features import (
    DATASET_FEATURE,
    DRIFT_SHARE,
    INSUFFICIENT_METHOD,
    RECORD_FEATURES,
    SHARE_METHOD,
)
from agent.drift.loader import Sample, load_records, load_texts, models_in_window
from agent.drift.results import write_results
from agent.drift.windows import Windows, drift_windows
from agent.errors import DriftError
from agent.samples import DriftResult
from agent.utc import as_utc

if TYPE_CHECKING:
    from agent.drift.compute import FeatureDrift

log = logging.getLogger(__name__)

DEFAULT_REFUSAL_PHRASES: tuple[str, ...] = CaptureSettings.model_fields["refusal_phrases"].default
"""The proxy's default phrases; pass capture.refusal_phrases so both sides agree."""

_RECORD_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(f.column for f in RECORD_FEATURES))


def _shortfall(what: str, reference: Sample, current: Sample, min_rows: int, windows: Windows) -> str | None:
    if reference.n >= min_rows and current.n >= min_rows:
        return None
    reason = (f"{what}: {reference.available} rows in the reference window and {current.available} in the "
              f"current window, {min_rows} needed in each")
    if windows.pinned and reference.n < min_rows:
        reason += " (a pinned reference older than store.raw_retention_days may have been deleted)"
    return reason


def _part_status(reference: Sample, current: Sample, shortfall: str | None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "status": "insufficient_data" if shortfall else "ok",
        "reference_rows": reference.available, "current_rows": current.available,
        "reference_sampled": reference.n, "current_sampled": current.n,
    }
    if shortfall:
        status["reason"] = shortfall
    return status


def check_model(engine: Engine, settings: DriftSettings, host: str, model: str, windows: Windows,
                now: datetime, refusal_phrases: Sequence[str] = DEFAULT_REFUSAL_PHRASES) -> list[DriftResult]:
    """The rows of one model's check; the summary row (feature `_dataset`) comes last."""
    w = windows
    ref = load_records(engine, host, model, w.reference_start, w.reference_end, _RECORD_COLUMNS, settings.max_rows)
    cur = load_records(engine, host, model, w.current_start, w.current_end, _RECORD_COLUMNS, settings.max_rows)
    ref_text = load_texts(engine, host, model, w.reference_start, w.reference_end, now, settings.max_rows)
    cur_text = load_texts(engine, host, model, w.current_start, w.current_end, now, settings.max_rows)
    records_short = _shortfall("request_records", ref, cur, settings.min_rows, w)
    texts_short = _shortfall("captured_outputs", ref_text, cur_text, settings.min_rows, w)
    if ref_text.available == 0 and cur_text.available == 0:
        texts_short = "captured_outputs: none stored (capture.store_text is off, or they expired)"

    tested: list[FeatureDrift] = []
    skipped: dict[str, str] = {}
    parts = {"request_records": _part_status(ref, cur, records_short),
             "captured_outputs": _part_status(ref_text, cur_text, texts_short)}
    version = None
    if records_short is None or texts_short is None:
        from agent.extras import require_extra

        require_extra("drift", "a drift check")  # one clear error, not an ImportError, without the extra
        from agent.drift import compute

        version = compute.EVIDENTLY_VERSION
        if records_short is None:
            outcome = compute.record_drift(ref, cur, RECORD_FEATURES, settings.min_rows)
            tested += outcome.tested
            skipped.update(outcome.skipped)
            parts["request_records"]["evidently_share"] = outcome.evidently_share
        if texts_short is None:
            outcome = compute.text_drift(ref_text, cur_text, refusal_phrases)
            tested += outcome.tested
            skipped.update(outcome.skipped)
            parts["captured_outputs"]["evidently_share"] = outcome.evidently_share

    def row(feature: str, method: str, score: float, threshold: float, drifted: bool, n_ref: int, n_cur: int,
            details: dict[str, Any]) -> DriftResult:
        return DriftResult(
            ts=now, host=host, model=model, feature=feature, method=method, score=score, threshold=threshold,
            drifted=drifted, window_start=w.current_start, window_end=w.current_end,
            reference_start=w.reference_start, reference_end=w.reference_end, n_reference=n_ref,
            n_current=n_cur, details=json.dumps(details, separators=(",", ":"), default=str),
        )

    results = [row(f.feature, f.method, f.score, f.threshold, f.drifted, f.n_reference, f.n_current,
                   dict(f.details)) for f in tested]
    summary: dict[str, Any] = {"parts": parts, "skipped": skipped, "reference_pinned": w.pinned,
                               "evidently": version}
    if not tested:
        reasons = [records_short or f"request_records: no feature had {settings.min_rows} values on each side",
                   texts_short or "captured_outputs: no feature could be tested"]
        summary.update(status="insufficient_data", reason="; ".join(reasons))
        results.append(row(DATASET_FEATURE, INSUFFICIENT_METHOD, 0.0, DRIFT_SHARE, False, ref.n, cur.n, summary))
        return results
    drifted = [f.feature for f in tested if f.drifted]
    share = len(drifted) / len(tested)
    summary.update(status="ok", drifted=drifted, tested=len(tested))
    results.append(row(DATASET_FEATURE, SHARE_METHOD, share, DRIFT_SHARE, share >= DRIFT_SHARE,
                       ref.n, cur.n, summary))
    return results


def run_drift_check(engine: Engine, settings: DriftSettings, host: str, model: str | None = None,
                    now: datetime | None = None, *, refusal_phrases: Sequence[str] = DEFAULT_REFUSAL_PHRASES,
                    write: bool = True) -> list[DriftResult]:
    """Check every model that produced outputs on `host` in the current window (or only `model`),
    write the rows to drift_results unless `write=False`, and return them. All rows of one run
    share `ts` = now. Runs Evidently in this process: the agent uses DriftWorker instead.

    A model whose check fails does not stop the others: theirs are written, then DriftError names
    the failed models. An error before any model is checked (database unreachable, tables missing)
    propagates as it is."""
    now = as_utc(now) if now is not None else datetime.now(UTC)
    windows = drift_windows(settings, now)
    models = [model] if model is not None else models_in_window(
        engine, host, windows.current_start, windows.current_end)
    results: list[DriftResult] = []
    failed: list[str] = []
    for name in models:
        try:
            results += check_model(engine, settings, host, name, windows, now, refusal_phrases)
        except Exception as exc:  # one model's data must not cost the others their check
            first_line = (str(exc).strip().splitlines() or [""])[0]
            failed.append(f"{name}: {type(exc).__name__}: {first_line}")
            log.warning("drift check of model %s failed: %s", name, failed[-1])
    if write:
        write_results(engine, results)
    if failed:
        kept = "; the other models' results were written" if write and results else ""
        raise DriftError(f"drift check failed for {len(failed)} of {len(models)} model(s) ({'; '.join(failed)})"
                         f"{kept}")
    return results
