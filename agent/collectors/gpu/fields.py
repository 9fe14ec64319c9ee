"""The fields file: which GPU fields to collect, as data (like dcgm-exporter's counters CSV).

One field per line: `field, type, unit, help`; `#` starts a comment, so commenting out a line
disables that field. Every line is checked against the fields campwatch knows (sources.py) and all
problems are reported at once with their line numbers (FieldSpecError)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from agent.collectors.datafile import read_data_file
from agent.collectors.gpu.sources import KNOWN_FIELDS, UNITS, KnownField
from agent.errors import FieldSpecError, Problem

BUNDLED_FIELDS = Path(__file__).with_name("fields.csv")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One enabled field: its known source plus the help text and line it came from."""

    source: KnownField
    help: str
    line: int

    @property
    def name(self) -> str:
        return self.source.name


def parse_fields(text: str, source: str) -> tuple[FieldSpec, ...]:
    """Parse fields-file text; `source` names the file in error messages."""
    specs: list[FieldSpec] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}:{number}"
        parts = [part.strip() for part in line.split(",", 3)]
        if len(parts) != 4:
            problems.append(Problem(where, f"expected 4 comma-separated columns (field, type, unit, help), "
                                           f"got {len(parts)}: {line!r}"))
            continue
        name, kind, unit, help_text = parts
        known = KNOWN_FIELDS.get(name)
        if known is None:
            close = difflib.get_close_matches(name, KNOWN_FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known fields: {', '.join(KNOWN_FIELDS)}"
            problems.append(Problem(where, f"unknown field {name!r}{hint}"))
            continue
        line_problems: list[str] = []
        if kind not in ("gauge", "counter"):
            line_problems.append(f"type: expected gauge or counter, got {kind!r}")
        elif kind != known.kind:
            line_problems.append(f"type: {name} is a {known.kind}, got {kind!r}")
        if unit not in UNITS:
            line_problems.append(f"unit: expected one of {', '.join(sorted(UNITS))}, got {unit!r}")
        elif unit != known.unit:
            line_problems.append(f"unit: {name} is in {known.unit}, got {unit!r}")
        if not help_text:
            line_problems.append("help: expected a description after the third comma")
        if name in seen:
            line_problems.append(f"{name} is already declared on line {seen[name]}")
        if line_problems:
            problems.extend(Problem(where, message) for message in line_problems)
            continue
        seen[name] = number
        specs.append(FieldSpec(known, help_text, number))
    if problems:
        raise FieldSpecError(source, problems)
    return tuple(specs)


def load_fields(path: str | Path | None = None) -> tuple[FieldSpec, ...]:
    """The enabled fields from `path`, or from the bundled fields.csv when None or empty."""
    return parse_fields(*read_data_file(path, BUNDLED_FIELDS, "the fields file"))
