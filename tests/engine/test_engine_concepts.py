"""One concept table says which engine concepts are exported raw and which are stored; the catalog,
the collector's raw families and the store's columns agree with it."""

from __future__ import annotations

from agent.collectors.engine.catalog import ENGINE_METRICS
from agent.collectors.engine.maps import COUNTERS, GAUGES, HISTOGRAMS
from agent.concepts.engine import (
    ENGINE_CONCEPTS,
    ENGINE_RAW_EXPORTED,
    ENGINE_STORED_HISTOGRAMS,
    ENGINE_STORED_VALUES,
)
from agent.store.schema import engine_samples

_PER_CORE = ("host", "server", "model", "engine")


def test_the_catalog_declares_a_per_core_family_for_exactly_the_concepts_exported_raw() -> None:
    per_core = {spec.name for spec in ENGINE_METRICS if spec.labels == _PER_CORE}
    assert per_core == {"campwatch_engine_" + concept for concept in ENGINE_RAW_EXPORTED}
    kinds = {spec.name: spec.kind for spec in ENGINE_METRICS}
    for concept in ENGINE_CONCEPTS:
        if concept.exported:
            assert kinds["campwatch_engine_" + concept.name] == concept.kind, concept.name


def test_only_counters_and_gauges_are_exported_raw_and_every_concept_is_named_once() -> None:
    assert [c.name for c in ENGINE_CONCEPTS if c.exported and c.kind == "histogram"] == []
    names = [c.name for c in ENGINE_CONCEPTS]
    assert len(names) == len(set(names))
    assert sorted(names) == sorted((*COUNTERS, *GAUGES, *HISTOGRAMS))


def test_engine_samples_has_one_value_column_per_stored_concept_and_nothing_else() -> None:
    fixed = {"id", "ts", "host", "server", "kind", "model", "engine", "up", "simulated", "histograms"}
    assert [c.name for c in engine_samples.columns if c.name not in fixed] == list(ENGINE_STORED_VALUES)
    assert ENGINE_STORED_HISTOGRAMS == ("ttft_seconds", "inter_token_latency_seconds", "e2e_latency_seconds",
                                        "request_prompt_tokens", "request_generation_tokens")
