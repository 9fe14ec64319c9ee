"""The GPU peak table: bundled figures, validation with line numbers, and resolving engine.gpu_model."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.collectors.engine.collector import build_engine_collectors
from agent.collectors.engine.peaks import find_peak, load_peaks, parse_peaks, resolve_peak
from agent.config import EngineSettings
from agent.errors import ConfigError, FieldSpecError

HEADER = "gpu,pattern,bf16_tflops,fp8_tflops,memory_bandwidth_gbs,source\n"


def test_the_bundled_table_loads_and_every_row_names_its_source() -> None:
    peaks = load_peaks()
    assert len(peaks) >= 15
    assert all(p.source for p in peaks)
    assert len({p.gpu for p in peaks}) == len(peaks)


@pytest.mark.parametrize(("nvml_name", "gpu"), [
    ("NVIDIA H100 80GB HBM3", "H100 SXM 80GB"),
    ("Simulated H100 80GB HBM3", "H100 SXM 80GB"),
    ("NVIDIA H100 PCIe", "H100 PCIe"),
    ("NVIDIA H100 NVL", "H100 NVL"),
    ("NVIDIA H200", "H200 SXM"),
    ("NVIDIA GH200 480GB", "GH200"),
    ("NVIDIA H20", "H20"),
    ("NVIDIA A100-SXM4-80GB", "A100 SXM 80GB"),
    ("NVIDIA A100-SXM4-40GB", "A100 40GB"),
    ("NVIDIA A100 80GB PCIe", "A100 PCIe 80GB"),
    ("NVIDIA L40S", "L40S"),
    ("NVIDIA L40", "L40"),
    ("NVIDIA L4", "L4"),
    ("AMD Instinct MI300X", "MI300X"),
])
def test_nvml_model_names_find_the_right_row(nvml_name: str, gpu: str) -> None:
    found = find_peak(load_peaks(), nvml_name)
    assert found is not None and found.gpu == gpu


def test_resolving_the_h100_gives_its_dense_bf16_and_fp8_peaks_and_bandwidth() -> None:
    bf16 = resolve_peak("NVIDIA H100 80GB HBM3", "bf16")
    fp8 = resolve_peak("NVIDIA H100 80GB HBM3", "fp8")
    assert bf16 is not None and fp8 is not None
    assert bf16.flops_per_second == pytest.approx(989.4e12)
    assert fp8.flops_per_second == pytest.approx(1978.9e12)
    assert bf16.bytes_per_second == pytest.approx(3350e9)
    assert resolve_peak("", "bf16") is None


def test_an_unknown_gpu_model_is_a_config_error_with_the_closest_row() -> None:
    with pytest.raises(ConfigError) as err:
        resolve_peak("H10O SXM 80GB", "bf16")
    assert "engine.gpu_model" in str(err.value)
    assert "did you mean 'H100 SXM 80GB'" in str(err.value)


def test_fp8_on_a_gpu_without_an_fp8_peak_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"engine.mfu_dtype: A100 SXM 80GB .*has no fp8 peak"):
        resolve_peak("NVIDIA A100-SXM4-80GB", "fp8")


def test_every_bad_row_is_reported_at_once_with_its_line_number() -> None:
    text = HEADER + "\n".join([
        "# a comment line",
        "Good,Good,100,,1000,datasheet",
        "Bad number,X,fast,,1000,datasheet",
        "Bad regex,(unclosed,100,,1000,datasheet",
        "Good,G2,100,,1000,datasheet",
        "No source,Y,100,200,-5,",
        "Short,row",
    ]) + "\n"
    with pytest.raises(FieldSpecError) as err:
        parse_peaks(text, "peaks.csv")
    got = [str(p) for p in err.value.problems]
    assert got == [
        "peaks.csv:4: bf16_tflops: expected a positive number, got 'fast'",
        "peaks.csv:5: pattern: expected a regular expression, got '(unclosed' "
        "(missing ), unterminated subpattern at position 0)",
        "peaks.csv:6: gpu: 'Good' is already declared on line 3",
        "peaks.csv:7: memory_bandwidth_gbs: expected a positive number, got '-5'",
        "peaks.csv:7: source: expected where the figures come from (e.g. the vendor datasheet)",
        "peaks.csv:8: expected 6 comma-separated columns (gpu,pattern,bf16_tflops,fp8_tflops,"
        "memory_bandwidth_gbs,source), got 2",
    ]


def test_a_misspelt_column_gets_a_did_you_mean() -> None:
    text = "gpu,pattern,bf16_tflop,fp8_tflops,memory_bandwidth_gbs,source\nA,A,1,,1,x\n"
    with pytest.raises(FieldSpecError) as err:
        parse_peaks(text, "peaks.csv")
    assert [str(p) for p in err.value.problems] == [
        "peaks.csv:1: unknown column 'bf16_tflop' (did you mean 'bf16_tflops'?)",
        "peaks.csv:1: missing columns: bf16_tflops",
    ]


def test_a_user_peak_file_replaces_the_bundled_one(tmp_path: Path) -> None:
    path = tmp_path / "peaks.csv"
    path.write_text(HEADER + "Lab GPU,lab-gpu,50,,500,our own measurement\n", encoding="utf-8")
    figures = resolve_peak("lab-gpu-7", "bf16", str(path))
    assert figures is not None and figures.flops_per_second == pytest.approx(50e12)
    with pytest.raises(ConfigError):
        resolve_peak("NVIDIA H100 80GB HBM3", "bf16", str(path))


def test_an_unreadable_or_non_utf8_peak_file_names_the_path_and_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(FieldSpecError, match=r"nope\.csv: cannot read the GPU peak table"):
        load_peaks(tmp_path / "nope.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(HEADER.encode() + "H100 \xe9,H100,989,1979,3350,spec\n".encode("latin-1"))
    with pytest.raises(FieldSpecError, match=r"latin\.csv: expected a UTF-8 text file"):
        load_peaks(latin)
    assert load_peaks("") == load_peaks()


def test_the_engine_settings_reach_the_collectors_and_fail_at_build_time() -> None:
    settings = EngineSettings(urls=("http://127.0.0.1:1/metrics",), gpu_model="NVIDIA Q9000")
    with pytest.raises(ConfigError, match=r"engine\.gpu_model"):
        build_engine_collectors(settings, "h")
    ok = EngineSettings(urls=("http://127.0.0.1:1/metrics",), gpu_model="NVIDIA L4")
    assert len(build_engine_collectors(ok, "h")) == 1
