"""The real request trace the demo replays: arrival times and token counts of 19,366 requests to an
Azure LLM inference service (conversation), 2023-11-16.

Source: Azure/AzurePublicDataset, data/AzureLLMInferenceTrace_conv.csv, CC-BY 4.0.
Attribution: Patel et al., "Splitwise: Efficient generative LLM inference using phase splitting",
ISCA 2024."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

from agent.errors import FieldSpecError, Problem
from agent.utc import as_utc

BUNDLED = "azure_conv_2023.csv.gz"
ATTRIBUTION = ("Azure LLM inference trace (conversation, 2023-11-16), CC-BY 4.0 - Patel et al., "
               "\"Splitwise: Efficient generative LLM inference using phase splitting\", ISCA 2024")


@dataclass(frozen=True, slots=True)
class TraceRequest:
    offset_s: float
    """Seconds since the first request of the trace."""
    context_tokens: int
    generated_tokens: int


def _open(path: Path | None) -> io.TextIOBase:
    if path is None:
        raw = resources.files("agent.sim.data").joinpath(BUNDLED).read_bytes()
        return io.TextIOWrapper(io.BytesIO(gzip.decompress(raw)), encoding="utf-8")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return path.open(encoding="utf-8")


def _when(text: str) -> datetime:
    # The trace carries 7 fractional digits; Python parses at most 6.
    head, _, frac = text.partition(".")
    return datetime.fromisoformat(f"{head}.{frac[:6]}" if frac else head)


def trace_rows(path: Path | None = None) -> Iterator[tuple[datetime, int, int]]:
    """(arrival in UTC, context tokens, generated tokens) of each row of the bundled trace (or a CSV
    with the same columns), in file order, as recorded."""
    source = str(path) if path else f"bundled {BUNDLED}"
    with _open(path) as handle:
        reader = csv.DictReader(handle)
        expected = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"}
        if not reader.fieldnames or not expected <= set(reader.fieldnames):
            raise FieldSpecError(source, [Problem("line 1", f"expected columns {sorted(expected)}, "
                                                           f"got {reader.fieldnames}")])
        for line, row in enumerate(reader, start=2):
            try:
                when = as_utc(_when(row["TIMESTAMP"]))
                context, generated = int(row["ContextTokens"]), int(row["GeneratedTokens"])
            except (ValueError, TypeError) as exc:
                raise FieldSpecError(source, [Problem(f"line {line}", f"expected a timestamp and two "
                                                                      f"integers: {exc}")]) from None
            yield when, context, generated


def load_trace(path: Path | None = None) -> Iterator[TraceRequest]:
    """Requests of the bundled trace (or a CSV with the same columns), in arrival order, timed from
    the first one; at least one token each way."""
    first: datetime | None = None
    for when, context, generated in trace_rows(path):
        first = first or when
        yield TraceRequest((when - first).total_seconds(), max(context, 1), max(generated, 1))
