"""The fields file (what to collect, as data) and the catalog derived from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.catalog import CATALOG
from agent.collectors.gpu.catalog import GPU_LABELS, GPU_METRICS
from agent.collectors.gpu.fields import BUNDLED_FIELDS, load_fields, parse_fields
from agent.collectors.gpu.sources import DEVICE_READINGS, KNOWN_FIELDS
from agent.concepts.gpu import GPU_STORED_FIELDS
from agent.errors import FieldSpecError

_SUFFIX = {
    "ratio": "_ratio", "bytes": "_bytes", "watts": "_watts", "joules": "_joules_total", "hertz": "_hz",
    "celsius": "_celsius", "bytes_per_second": "_bytes_per_second", "seconds": "_seconds",
}


def test_bundled_fields_enable_every_known_field() -> None:
    names = [spec.name for spec in load_fields()]
    assert sorted(names) == sorted(KNOWN_FIELDS)


def test_every_field_a_fields_file_can_enable_has_a_catalog_family() -> None:
    for field in KNOWN_FIELDS.values():
        spec = CATALOG[field.metric]
        assert spec.kind == field.kind
        assert spec.labels[: len(GPU_LABELS)] == GPU_LABELS


def test_foundation_gpu_families_exist_with_their_labels() -> None:
    for name, kind in [("campwatch_gpu_up", "gauge"), ("campwatch_gpu_utilization_ratio", "gauge"),
                       ("campwatch_gpu_memory_used_bytes", "gauge"), ("campwatch_gpu_memory_total_bytes", "gauge"),
                       ("campwatch_gpu_power_watts", "gauge"), ("campwatch_gpu_energy_joules_total", "counter")]:
        assert CATALOG[name].kind == kind
        assert set(CATALOG[name].labels) == {"host", "gpu", "uuid", "model", "pci_bus_id"}


def test_names_carry_their_base_unit_and_counters_end_in_total() -> None:
    for field in KNOWN_FIELDS.values():
        if field.unit in _SUFFIX and field.exposition != "throttle":
            # a counter carries its unit before _total (campwatch_gpu_nvlink_tx_bytes_total)
            assert field.name.removesuffix("_total").endswith(_SUFFIX[field.unit].removesuffix("_total")), \
                field.name
        assert field.name.endswith("_total") == (field.kind == "counter"), field.name
    assert all(m.name.startswith("campwatch_gpu_") for m in GPU_METRICS)


def test_stored_field_names_are_known_fields() -> None:
    assert set(GPU_STORED_FIELDS) <= set(KNOWN_FIELDS)


def test_every_device_reading_lists_its_fields_in_order() -> None:
    for reading, fields in DEVICE_READINGS.items():
        assert [KNOWN_FIELDS[f].position for f in fields] == list(range(len(fields))), reading


def test_a_commented_out_line_disables_the_field() -> None:
    text = "utilization_ratio, gauge, ratio, Busy share.\n# power_watts, gauge, watts, Power.\n"
    assert [s.name for s in parse_fields(text, "f.csv")] == ["utilization_ratio"]


def test_help_may_contain_commas() -> None:
    (spec,) = parse_fields("power_watts, gauge, watts, Power, as the driver reports it, in W.", "f.csv")
    assert spec.help == "Power, as the driver reports it, in W."


def test_every_problem_is_reported_with_its_line_number() -> None:
    text = "\n".join([
        "# header",
        "utilization_ratio, gauge, ratio, ok",
        "powr_watts, gauge, watts, typo",
        "memory_used_bytes, counter, bytes, wrong type",
        "memory_total_bytes, gauge, megabytes, unknown unit",
        "sm_clock_hz, gauge, celsius, wrong unit",
        "temperature_celsius, gauge",
        "utilization_ratio, gauge, ratio, duplicate",
        "fan_speed_ratio, gauge, ratio,",
    ])
    with pytest.raises(FieldSpecError) as caught:
        parse_fields(text, "my.csv")
    found = {(p.where, p.message.split(":")[0]) for p in caught.value.problems}
    assert ("my.csv:3", "unknown field 'powr_watts' (did you mean 'power_watts'?)") in found
    assert ("my.csv:4", "type") in found
    assert ("my.csv:5", "unit") in found
    assert ("my.csv:6", "unit") in found
    assert ("my.csv:7", "expected 4 comma-separated columns (field, type, unit, help), got 2") in found
    assert ("my.csv:8", "utilization_ratio is already declared on line 2") in found
    assert ("my.csv:9", "help") in found
    assert len(caught.value.problems) == 7
    assert "my.csv:5" in str(caught.value) and "megabytes" in str(caught.value)


def test_an_unreadable_fields_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(FieldSpecError, match=r"nope\.csv: cannot read the fields file"):
        load_fields(missing)


def test_an_empty_path_means_the_bundled_file() -> None:
    assert load_fields("") == load_fields(BUNDLED_FIELDS)


def test_gpu_samples_has_one_value_column_per_stored_field_and_the_bundled_file_enables_each() -> None:
    from agent.store.schema import gpu_samples

    fixed = {"id", "ts", "host", "gpu_index", "uuid", "model", "up", "simulated"}
    assert [c.name for c in gpu_samples.columns if c.name not in fixed] == list(GPU_STORED_FIELDS)
    assert set(GPU_STORED_FIELDS) <= {spec.name for spec in load_fields()}
