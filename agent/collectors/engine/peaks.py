"""GPU peak figures as data (gpu_peaks.csv), for model FLOPs utilization and memory-bandwidth
utilization of the engine's per-GPU estimates.

The file is validated like the GPU fields file: every problem is reported at once with its line
number, an unknown column with a did-you-mean (FieldSpecError). `resolve_peak` turns the configured
GPU model into the figures the SLI deriver divides by, or a ConfigError naming the closest row."""

from __future__ import annotations

import csv
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent.collectors.datafile import read_data_file
from agent.collectors.engine.derive import PeakFigures
from agent.errors import ConfigError, FieldSpecError, Problem

BUNDLED_PEAKS = Path(__file__).with_name("gpu_peaks.csv")
COLUMNS: tuple[str, ...] = ("gpu", "pattern", "bf16_tflops", "fp8_tflops", "memory_bandwidth_gbs", "source")
Dtype = Literal["bf16", "fp8"]


@dataclass(frozen=True, slots=True)
class GpuPeak:
    """One row: a GPU model's dense tensor peaks and memory bandwidth, with where they come from."""

    gpu: str
    pattern: re.Pattern[str]
    bf16_tflops: float
    fp8_tflops: float | None
    memory_bandwidth_gbs: float
    source: str
    line: int

    def figures(self, dtype: Dtype) -> PeakFigures | None:
        """Peak rates for `dtype`; None when the GPU has no peak for it (FP8 on an A100)."""
        tflops = self.bf16_tflops if dtype == "bf16" else self.fp8_tflops
        if tflops is None:
            return None
        return PeakFigures(flops_per_second=tflops * 1e12, bytes_per_second=self.memory_bandwidth_gbs * 1e9)


def _number(text: str, column: str, optional: bool = False) -> tuple[float | None, str | None]:
    if not text:
        return (None, None) if optional else (None, f"{column}: expected a positive number, got nothing")
    try:
        value = float(text)
    except ValueError:
        return None, f"{column}: expected a positive number, got {text!r}"
    if not value > 0 or value == float("inf"):
        return None, f"{column}: expected a positive number, got {text!r}"
    return value, None


def parse_peaks(text: str, source: str) -> tuple[GpuPeak, ...]:
    """Parse peak-table text (a header line naming COLUMNS, then one row per GPU; `#` comments)."""
    problems: list[Problem] = []
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
                if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise FieldSpecError(source, [Problem(source, f"expected a header line: {','.join(COLUMNS)}")])
    header_line, header_text = numbered[0]
    header = [c.strip() for c in next(csv.reader([header_text]))]
    if tuple(header) != COLUMNS:
        for column in header:
            if column not in COLUMNS:
                close = difflib.get_close_matches(column, COLUMNS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(Problem(f"{source}:{header_line}", f"unknown column {column!r}{hint}"))
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            problems.append(Problem(f"{source}:{header_line}", f"missing columns: {', '.join(missing)}"))
        if not problems:
            problems.append(Problem(f"{source}:{header_line}", f"expected the columns in this order: "
                                                               f"{','.join(COLUMNS)}"))
        raise FieldSpecError(source, problems)
    peaks: list[GpuPeak] = []
    seen: dict[str, int] = {}
    for number, line in numbered[1:]:
        where = f"{source}:{number}"
        cells = [c.strip() for c in next(csv.reader([line]))]
        if len(cells) != len(COLUMNS):
            problems.append(Problem(where, f"expected {len(COLUMNS)} comma-separated columns "
                                           f"({','.join(COLUMNS)}), got {len(cells)}"))
            continue
        gpu, pattern_text, bf16_text, fp8_text, bandwidth_text, origin = cells
        row_problems: list[str] = []
        if not gpu:
            row_problems.append("gpu: expected the GPU model's name")
        elif gpu in seen:
            row_problems.append(f"gpu: {gpu!r} is already declared on line {seen[gpu]}")
        pattern: re.Pattern[str] | None = None
        try:
            pattern = re.compile(pattern_text or re.escape(gpu), re.IGNORECASE)
        except re.error as exc:
            row_problems.append(f"pattern: expected a regular expression, got {pattern_text!r} ({exc})")
        bf16, err = _number(bf16_text, "bf16_tflops")
        if err:
            row_problems.append(err)
        fp8, err = _number(fp8_text, "fp8_tflops", optional=True)
        if err:
            row_problems.append(err)
        bandwidth, err = _number(bandwidth_text, "memory_bandwidth_gbs")
        if err:
            row_problems.append(err)
        if not origin:
            row_problems.append("source: expected where the figures come from (e.g. the vendor datasheet)")
        if row_problems or pattern is None or bf16 is None or bandwidth is None:
            problems.extend(Problem(where, message) for message in row_problems)
            continue
        seen[gpu] = number
        peaks.append(GpuPeak(gpu, pattern, bf16, fp8, bandwidth, origin, number))
    if problems:
        raise FieldSpecError(source, problems)
    return tuple(peaks)


def load_peaks(path: str | Path | None = None) -> tuple[GpuPeak, ...]:
    """The peak table from `path`, or the bundled gpu_peaks.csv when None or empty."""
    return parse_peaks(*read_data_file(path, BUNDLED_PEAKS, "the GPU peak table"))


def find_peak(peaks: tuple[GpuPeak, ...], gpu_model: str) -> GpuPeak | None:
    """The first row whose pattern matches `gpu_model`."""
    for peak in peaks:
        if peak.pattern.search(gpu_model):
            return peak
    return None


def resolve_peak(gpu_model: str, dtype: Dtype, peaks_file: str = "",
                 where: str = "engine.gpu_model") -> PeakFigures | None:
    """Peak figures for the configured GPU model; None when no model is configured (no MFU SLIs).

    ConfigError when the model matches no row (with the closest row's name) or has no `dtype` peak."""
    if not gpu_model:
        return None
    peaks = load_peaks(peaks_file or None)
    table = peaks_file or str(BUNDLED_PEAKS.name)
    peak = find_peak(peaks, gpu_model)
    if peak is None:
        names = [p.gpu for p in peaks]
        close = difflib.get_close_matches(gpu_model, names, n=1, cutoff=0.3)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(names)}"
        raise ConfigError("engine settings", [Problem(where, f"no row of {table} matches {gpu_model!r}{hint}; "
                                                             "add a row to engine.gpu_peaks_file")])
    figures = peak.figures(dtype)
    if figures is None:
        raise ConfigError("engine settings", [Problem(
            "engine.mfu_dtype", f"{peak.gpu} ({table} line {peak.line}) has no {dtype} peak; use bf16")])
    return figures
