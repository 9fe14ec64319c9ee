"""The metric maps are consistent data, and they cover every name on real and reference pages."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.collectors.engine.maps import (
    COUNTERS,
    EXTRACTED,
    FINISH_REASONS,
    GAUGES,
    HISTOGRAMS,
    LORA_ADAPTERS,
    SERVER_MAPS,
    ServerMap,
)
from agent.collectors.engine.parse import parse_page
from agent.sim.vllm_metrics import VllmMetrics
from tests.support.pages import V1_ENGINES, V1_MODELS, fixture_text

_TYPE_OF_CONCEPT = {**dict.fromkeys(COUNTERS, "counter"), **dict.fromkeys(GAUGES, "gauge"),
                    **dict.fromkeys(HISTOGRAMS, "histogram"), FINISH_REASONS: "counter", LORA_ADAPTERS: "info"}
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


@pytest.mark.parametrize("server", SERVER_MAPS, ids=lambda m: m.kind)
def test_every_source_carries_the_server_prefix_a_valid_name_and_a_note(server: ServerMap) -> None:
    for name, source in server.sources.items():
        # Server-wide families come from HTTP middleware that knows nothing of the engine's prefix.
        assert name.startswith(server.prefix) or source.server_wide, name
        assert _NAME.match(name), name
        assert source.note, f"{name}: say which versions serve it"
        if source.type == "counter" and server.kind not in ("tgi", "llamacpp"):
            assert name.endswith("_total"), f"{name}: prometheus_client serves counters with _total"


@pytest.mark.parametrize("server", SERVER_MAPS, ids=lambda m: m.kind)
def test_extracted_concepts_come_from_sources_of_the_right_type(server: ServerMap) -> None:
    for name, source in server.sources.items():
        if source.concept in EXTRACTED:
            assert source.type == _TYPE_OF_CONCEPT[source.concept], name


@pytest.mark.parametrize("server", SERVER_MAPS, ids=lambda m: m.kind)
def test_two_names_for_one_concept_differ_in_rank_unless_they_are_merged(server: ServerMap) -> None:
    ranks: dict[str, list[int]] = defaultdict(list)
    for source in server.sources.values():
        if source.concept != FINISH_REASONS:
            ranks[source.concept].append(source.rank)
    for concept, seen in ranks.items():
        assert len(seen) == len(set(seen)), f"{server.kind}: {concept} has two sources of the same rank"


def test_vllm_renames_map_old_and_new_names_to_one_concept_preferring_the_new() -> None:
    vllm = SERVER_MAPS[0].sources
    pairs = [("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
             ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total"),
             ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total"),
             ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds")]
    for new, old in pairs:
        assert vllm[new].concept == vllm[old].concept
        assert vllm[new].rank < vllm[old].rank


def test_every_vllm_family_of_the_real_capture_is_mapped() -> None:
    text = fixture_text("vllm/datadog_vllm_metrics.txt")
    page = parse_page(text)
    assert page.kind == "vllm"
    assert page.unmapped == frozenset()
    served = {f.name for f in text_string_to_metric_families(text) if f.name.startswith("vllm:")}
    lookup = {name.removesuffix("_total") for name in SERVER_MAPS[0].sources} | set(SERVER_MAPS[0].sources)
    assert served <= lookup


def test_a_vllm_032_page_reports_no_unmapped_family_for_http_process_and_created_companions() -> None:
    # HTTP middleware, process/GC collectors and _created companions are known-ignorable;
    # vLLM 0.32's own new families are mapped
    page = parse_page(VllmMetrics(V1_MODELS, V1_ENGINES, v032=True).render())
    assert page.unmapped == frozenset()
    assert parse_page(VllmMetrics(V1_MODELS, V1_ENGINES, v032=True).render(), skip_unused=False).unmapped == frozenset()


def test_every_family_of_the_reference_v1_table_is_mapped() -> None:
    page = parse_page(VllmMetrics(V1_MODELS, V1_ENGINES, lora_adapters=("a",)).render())
    assert page.unmapped == frozenset()


def _page_of_every_declared_family(path: str) -> tuple[str, set[str]]:
    """A page with one sample of every family upstream's source declares (fixtures/*_families.txt)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest

    reg = CollectorRegistry()
    names = set()
    kinds = {"counter": Counter, "gauge": Gauge, "histogram": Histogram, "summary": Summary}
    for line in fixture_text(path).splitlines():
        if not line or line.startswith("#"):
            continue
        name, kind = line.split()
        names.add(name)
        metric = kinds[kind](name, "x", registry=reg)
        if kind == "counter":
            metric.inc(1)
        elif kind == "gauge":
            metric.set(1)
        else:
            metric.observe(1)
    return generate_latest(reg).decode(), names


@pytest.mark.parametrize("path", ["vllm/vllm_0.32_families.txt", "sglang/sglang_0.5.23_families.txt"])
def test_every_family_declared_by_vllm_032_and_sglang_0523_is_mapped_or_known(path: str) -> None:
    text, names = _page_of_every_declared_family(path)
    page = parse_page(text)
    assert page.kind == path.split("/")[0]
    assert page.unmapped == frozenset()
    server = next(m for m in SERVER_MAPS if m.kind == page.kind)
    unknown = {n for n in names if n not in server.sources and not n.startswith(server.known_prefixes)}
    assert unknown == set()


@pytest.mark.parametrize("path", ["sglang/sglang_metrics.txt", "tgi/tgi_metrics.txt",
                                  "llamacpp/llamacpp_metrics.txt", "llamacpp/llamacpp_metrics_idle.txt"])
def test_every_family_of_the_sglang_tgi_and_real_llamacpp_pages_is_mapped(path: str) -> None:
    assert parse_page(fixture_text(path)).unmapped == frozenset()
