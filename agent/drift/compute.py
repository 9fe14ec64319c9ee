"""The drift tests themselves, with Evidently. Importing this module imports Evidently (about 4 s and
a few hundred MB): only the drift worker's child process and `campwatch drift` do.

Only offline-safe parts of Evidently are used (docs/drift.md lists the descriptors that download
NLTK data or models at run time, and so are never used). Per column, Evidently picks the test from
the data (K-S or Z-test p-values up to 1,000 reference rows, Wasserstein or Jensen-Shannon distance
above) and gives its verdict; campwatch reads score, method, threshold and verdict from the report's
JSON and decides nothing itself."""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# Evidently's usage telemetry is only wired into its UI service, but say so anyway; the Hugging Face
# switches make any model load fail fast instead of trying the network (no such load is used).
for _name in ("DO_NOT_TRACK", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_name, "1")

import pandas as pd  # noqa: E402
from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently import __version__ as _evidently_version  # noqa: E402
from evidently.descriptors import (  # noqa: E402
    IsValidJSON,
    NonLetterCharacterPercentage,
    RegExp,
    SentenceCount,
    TextLength,
    WordCount,
)
from evidently.metrics import ValueDrift  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

from agent.drift.features import (  # noqa: E402
    TEXT_COLUMN,
    TEXT_CONTENT_FEATURE,
    TEXT_FEATURES,
    FeatureKind,
    RecordFeature,
    TextFeature,
)
from agent.drift.loader import Sample  # noqa: E402
from agent.errors import DriftError  # noqa: E402

EVIDENTLY_VERSION: str = str(_evidently_version)

REFUSAL_WINDOW_CHARS = 400
"""Same as the proxy's refusal check (agent.capture.descriptors): a refusal opens the answer."""

_VALUE_DRIFT = "evidently:metric_v2:ValueDrift"
_DRIFTED_STATUSES = {"FAIL", "WARNING"}
_CLEAN_STATUSES = {"SUCCESS"}


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """Evidently's verdict on one feature, with a summary of both sides for people to read."""

    feature: str
    method: str
    score: float
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PartOutcome:
    """What one part (request descriptors, or captured texts) yielded: tested features, features
    skipped with the reason, and Evidently's own share of drifted columns for the part."""

    tested: tuple[FeatureDrift, ...] = ()
    skipped: Mapping[str, str] = field(default_factory=dict)
    evidently_share: float | None = None


@contextmanager
def _quiet() -> Iterator[None]:
    # numpy/pandas/sklearn warn about constant columns and the like inside Evidently: noise in the
    # agent's log that nobody can act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _category(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "true" if value else "false"
    return str(value)


def _column(values: pd.Series, kind: FeatureKind) -> pd.Series:
    if kind == "numerical":
        return pd.to_numeric(values, errors="coerce").astype(float)
    return values.map(_category).astype(object)


def summarize(values: pd.Series, kind: FeatureKind) -> dict[str, Any]:
    """A few numbers a person reads next to the verdict: mean/p50/p95, or the top category shares."""
    present = values.dropna()
    out: dict[str, Any] = {"n": int(present.size)}
    if present.empty:
        return out
    if kind == "numerical":
        out.update(mean=_round(present.mean()), p50=_round(present.quantile(0.5)),
                   p95=_round(present.quantile(0.95)))
    else:
        shares = present.astype(str).value_counts(normalize=True).head(5)
        out["shares"] = {str(k): _round(v) for k, v in shares.items()}
    return out


def _round(value: Any) -> float:
    number = float(value)
    return round(number, 6) if math.isfinite(number) else number


def _read_drifts(snapshot_json: str) -> tuple[dict[str, tuple[str, float, float, bool]], float | None]:
    """Per column (method, threshold, score, drifted), and the DriftedColumnsCount share."""
    data = json.loads(snapshot_json)
    metrics: dict[str, tuple[str, float, float]] = {}
    share: float | None = None
    for metric in data.get("metrics", []):
        config = metric.get("config", {})
        if config.get("type") == _VALUE_DRIFT:
            metrics[config["column"]] = (str(config["method"]), float(config["threshold"]), float(metric["value"]))
        elif isinstance(metric.get("value"), dict) and "share" in metric["value"]:
            share = float(metric["value"]["share"])
    verdicts: dict[str, bool] = {}
    for test in data.get("tests", []):
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type") != _VALUE_DRIFT:
            continue
        status = str(test.get("status"))
        if status not in _DRIFTED_STATUSES | _CLEAN_STATUSES:
            raise DriftError(f"Evidently could not test column {params.get('column')!r}: status {status}, "
                             f"{test.get('description', '')}")
        verdicts[params["column"]] = status in _DRIFTED_STATUSES
    missing = sorted(set(metrics) ^ set(verdicts))
    if missing:
        raise DriftError(f"Evidently {EVIDENTLY_VERSION} report lacks a drift score or verdict for {missing}")
    return {col: (*metrics[col], verdicts[col]) for col in metrics}, share


def _run(columns: Sequence[str], current: Dataset, reference: Dataset,
         extra: Sequence[Any] = ()) -> tuple[dict[str, tuple[str, float, float, bool]], float | None]:
    items: list[Any] = [DataDriftPreset(columns=list(columns))] if columns else []
    items.extend(extra)
    with _quiet():
        snapshot = Report(items, include_tests=True).run(current, reference)
    return _read_drifts(snapshot.json())


def _feature_drift(name: str, found: tuple[str, float, float, bool], n_ref: int, n_cur: int,
                   details: dict[str, Any]) -> FeatureDrift | None:
    method, threshold, score, drifted = found
    if not math.isfinite(score):
        return None
    return FeatureDrift(name, method, score, threshold, drifted, n_ref, n_cur,
                        {**details, "evidently": EVIDENTLY_VERSION})


def record_drift(reference: Sample, current: Sample, features: Sequence[RecordFeature],
                 min_values: int) -> PartOutcome:
    """Drift of per-request descriptors. A feature with fewer than `min_values` non-empty values on
    either side (e.g. json_valid when few requests asked for JSON) is skipped with the reason."""
    ref_raw = pd.DataFrame.from_records(list(reference.rows), columns=list(reference.columns))
    cur_raw = pd.DataFrame.from_records(list(current.rows), columns=list(current.columns))
    ref = pd.DataFrame({f.name: _column(ref_raw[f.column], f.kind) for f in features})
    cur = pd.DataFrame({f.name: _column(cur_raw[f.column], f.kind) for f in features})
    tested: list[RecordFeature] = []
    skipped: dict[str, str] = {}
    for f in features:
        n_ref, n_cur = int(ref[f.name].notna().sum()), int(cur[f.name].notna().sum())
        if n_ref < min_values or n_cur < min_values:
            skipped[f.name] = (f"{n_ref} reference and {n_cur} current values, "
                               f"{min_values} needed on each side")
        else:
            tested.append(f)
    if not tested:
        return PartOutcome((), skipped)
    definition = DataDefinition(
        numerical_columns=[f.name for f in tested if f.kind == "numerical"],
        categorical_columns=[f.name for f in tested if f.kind == "categorical"],
    )
    names = [f.name for f in tested]
    found, share = _run(names, Dataset.from_pandas(cur[names], data_definition=definition),
                        Dataset.from_pandas(ref[names], data_definition=definition))
    out: list[FeatureDrift] = []
    for f in tested:
        ref_summary, cur_summary = summarize(ref[f.name], f.kind), summarize(cur[f.name], f.kind)
        details = {"source": "request_records", "kind": f.kind, "reference": ref_summary, "current": cur_summary}
        drift = _feature_drift(f.name, found[f.name], ref_summary["n"], cur_summary["n"], details)
        if drift is None:
            skipped[f.name] = f"Evidently returned a non-finite score ({found[f.name][2]})"
        else:
            out.append(drift)
    return PartOutcome(tuple(out), skipped, share)


def refusal_pattern(phrases: Sequence[str]) -> str:
    """A regular expression for Evidently's RegExp descriptor (which uses re.search): one of the
    phrases, any case, either apostrophe, ending within the first REFUSAL_WINDOW_CHARS characters,
    as the proxy's own check (anchored, so a non-matching text costs one pass over its start)."""
    alternatives = "|".join(
        rf".{{0,{max(REFUSAL_WINDOW_CHARS - len(p), 0)}}}?{_phrase(p)}" for p in phrases if p.strip())
    if not alternatives:
        return r"(?!)"  # never matches
    return rf"(?is)\A(?:{alternatives})"


def _phrase(phrase: str) -> str:
    return "".join("['\u2019]" if ch in "'\u2019" else re.escape(ch) for ch in phrase.lower())


def _descriptor(feature: TextFeature, phrases: Sequence[str]) -> Any:
    makers: dict[str, Callable[[], Any]] = {
        "TextLength": lambda: TextLength(TEXT_COLUMN, alias=feature.name),
        "WordCount": lambda: WordCount(TEXT_COLUMN, alias=feature.name),
        "SentenceCount": lambda: SentenceCount(TEXT_COLUMN, alias=feature.name),
        "NonLetterCharacterPercentage": lambda: NonLetterCharacterPercentage(TEXT_COLUMN, alias=feature.name),
        "RegExp": lambda: RegExp(TEXT_COLUMN, reg_exp=refusal_pattern(phrases), alias=feature.name),
        "IsValidJSON": lambda: IsValidJSON(TEXT_COLUMN, alias=feature.name),
    }
    return makers[feature.descriptor]()


def _text_dataset(sample: Sample, phrases: Sequence[str]) -> Dataset:
    frame = pd.DataFrame({TEXT_COLUMN: [str(row[0]) for row in sample.rows]}, dtype=object)
    with _quiet():
        return Dataset.from_pandas(frame, data_definition=DataDefinition(text_columns=[TEXT_COLUMN]),
                                   descriptors=[_descriptor(f, phrases) for f in TEXT_FEATURES])


def text_drift(reference: Sample, current: Sample, phrases: Sequence[str]) -> PartOutcome:
    """Drift of captured output texts: offline descriptors through DataDriftPreset, and the words
    themselves through the text column's drift test (a TF-IDF domain classifier: scikit-learn only).

    The text column runs as its own ValueDrift, the metric DataDriftPreset would generate for it:
    inside the preset its 1,000-fold bootstrap would run three times (count, column, rendering)."""
    ref_ds, cur_ds = _text_dataset(reference, phrases), _text_dataset(current, phrases)
    ref_frame, cur_frame = ref_ds.as_dataframe(), cur_ds.as_dataframe()
    names = [f.name for f in TEXT_FEATURES]
    found, share = _run(names, cur_ds, ref_ds)
    out: list[FeatureDrift] = []
    skipped: dict[str, str] = {}
    for f in TEXT_FEATURES:
        details = {"source": "captured_outputs", "kind": f.kind, "descriptor": f.descriptor,
                   "reference": summarize(_column(ref_frame[f.name], f.kind), f.kind),
                   "current": summarize(_column(cur_frame[f.name], f.kind), f.kind)}
        drift = _feature_drift(f.name, found[f.name], reference.n, current.n, details)
        if drift is None:
            skipped[f.name] = f"Evidently returned a non-finite score ({found[f.name][2]})"
        else:
            out.append(drift)
    try:
        content, _ = _run((), cur_ds, ref_ds, extra=[ValueDrift(column=TEXT_COLUMN)])
    except ValueError as exc:  # sklearn: "After pruning, no terms remain" on near-identical texts
        skipped[TEXT_CONTENT_FEATURE] = f"the TF-IDF domain classifier could not run: {exc}"
    else:
        details = {"source": "captured_outputs", "kind": "text",
                   "score_is": "ROC AUC of a classifier telling current from reference texts (0.5: "
                               "indistinguishable); drifted when above the threshold-th percentile of "
                               "a random classifier's AUC",
                   "reference": {"n": reference.n}, "current": {"n": current.n}}
        drift = _feature_drift(TEXT_CONTENT_FEATURE, content[TEXT_COLUMN], reference.n, current.n, details)
        if drift is None:
            skipped[TEXT_CONTENT_FEATURE] = f"Evidently returned a non-finite score ({content[TEXT_COLUMN][2]})"
        else:
            out.append(drift)
    return PartOutcome(tuple(out), skipped, share)
