"""Writes the generated file that needs the whole catalog: docs/otlp.md, the OpenTelemetry name of
every exported family (`python -m agent.publish docs/otlp.md`; `make dashboards` runs it).

It sits above the areas, next to agent.catalog, so agent.exporters.otel_names (the naming rule)
stays below them and takes the families as a parameter."""

from __future__ import annotations

import sys
from pathlib import Path

from agent.catalog import ALL_METRICS
from agent.exporters.otel_names import DOC_HEAD, render_table


def otlp_doc() -> str:
    """docs/otlp.md as it should read for the current catalog."""
    return DOC_HEAD + render_table(ALL_METRICS)


def write_otlp_doc(path: Path) -> Path:
    path.write_text(otlp_doc())
    return path


if __name__ == "__main__":
    print(write_otlp_doc(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/otlp.md")))
