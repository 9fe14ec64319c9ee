"""What drift is tested on, as data: the per-request descriptors read from request_records and the
offline-safe Evidently text descriptors computed on captured outputs.

A feature's `name` is the `feature` label of the exported drift metrics and the `feature` column of
drift_results, so renaming one breaks dashboards and alert rules: add, don't rename."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FeatureKind = Literal["numerical", "categorical"]

DATASET_FEATURE = "_dataset"
"""The feature name of a run's summary row: score is the share of tested features that drifted."""

SHARE_METHOD = "share of drifted features"
INSUFFICIENT_METHOD = "insufficient data"

DRIFT_SHARE = 0.5
"""A model's outputs as a whole have drifted when at least this share of tested features drifted
(Evidently's DataDriftPreset default, the same rule as its DriftedColumnsCount test)."""


@dataclass(frozen=True, slots=True)
class RecordFeature:
    """A request_records column tested for drift. Booleans are tested as categories ("true"/"false")."""

    name: str
    column: str
    kind: FeatureKind
    about: str


RECORD_FEATURES: tuple[RecordFeature, ...] = (
    RecordFeature("completion_tokens", "completion_tokens", "numerical",
                  "output length in tokens (the upstream's usage)"),
    RecordFeature("output_chars", "output_chars", "numerical", "output length in characters"),
    RecordFeature("refusal", "refusal", "categorical", "refusal rate (phrase match or the OpenAI refusal field)"),
    RecordFeature("json_valid", "json_valid", "categorical",
                  "share of JSON-mode outputs that parse (JSON-mode requests only)"),
    RecordFeature("non_ascii_ratio", "non_ascii_ratio", "numerical", "share of non-ASCII characters in the output"),
    RecordFeature("finish_reason", "finish_reason", "categorical", "why generation stopped (stop, length, ...)"),
    RecordFeature("latency_seconds", "latency_seconds", "numerical", "request latency seen by the proxy"),
    RecordFeature("ttft_seconds", "ttft_seconds", "numerical", "time to first token (streaming requests only)"),
)

TextDescriptor = Literal["TextLength", "WordCount", "SentenceCount", "NonLetterCharacterPercentage",
                         "RegExp", "IsValidJSON"]


@dataclass(frozen=True, slots=True)
class TextFeature:
    """An Evidently descriptor computed on captured output texts. Only descriptors that work
    offline are allowed here (docs/drift.md lists the ones that download at run time)."""

    name: str
    descriptor: TextDescriptor
    kind: FeatureKind
    about: str


TEXT_FEATURES: tuple[TextFeature, ...] = (
    TextFeature("text_length", "TextLength", "numerical", "captured output length in characters"),
    TextFeature("text_words", "WordCount", "numerical", "words per captured output"),
    TextFeature("text_sentences", "SentenceCount", "numerical", "sentences per captured output"),
    TextFeature("text_non_letter_pct", "NonLetterCharacterPercentage", "numerical",
                "percentage of characters that are neither letters nor spaces"),
    TextFeature("text_refusal", "RegExp", "categorical", "a refusal phrase opens the output"),
    TextFeature("text_json_valid", "IsValidJSON", "categorical", "the output parses as JSON"),
)

TEXT_CONTENT_FEATURE = "text_content"
"""Drift of the words themselves: Evidently's TF-IDF domain classifier on the text column."""

TEXT_COLUMN = "text"
