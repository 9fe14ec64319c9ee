"""Drift results for people: a rich table per check (what `campwatch drift` prints)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from agent.drift.results import is_insufficient, is_summary
from agent.samples import DriftResult


def _number(value: float) -> str:
    if value == 0 or 0.001 <= abs(value) < 100_000:
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:.2e}"


def _side(summary: Mapping[str, Any]) -> str:
    if "mean" in summary:
        return f"mean {_number(summary['mean'])}, p95 {_number(summary['p95'])}"
    shares = summary.get("shares")
    if shares:
        if set(shares) <= {"true", "false"}:
            return f"{100 * shares.get('true', 0.0):.1f}% true"
        return ", ".join(f"{k} {100 * v:.0f}%" for k, v in list(shares.items())[:3])
    return f"n={summary.get('n', 0)}"


def _details(result: DriftResult) -> dict[str, Any]:
    try:
        parsed = json.loads(result.details)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _verdict(result: DriftResult) -> str:
    if is_insufficient(result):
        return "[yellow]insufficient data[/yellow]"
    return "[bold red]DRIFT[/bold red]" if result.drifted else "[green]ok[/green]"


def render_drift(console: Console, results: Sequence[DriftResult]) -> None:
    """One table per model and run, features first, then the model's summary line."""
    if not results:
        console.print("No drift results: no model produced outputs in the current window.")
        return
    groups: dict[tuple[str, str], list[DriftResult]] = {}
    for result in results:
        groups.setdefault((result.model, result.ts.isoformat()), []).append(result)
    for (model, _), group in groups.items():
        first = group[0]
        table = Table(title=f"drift: {model} on {first.host}", title_justify="left")
        for header in ("feature", "verdict", "score", "threshold", "method", "reference -> current", "n ref/cur"):
            table.add_column(header, justify="right" if header in {"score", "threshold"} else "left")
        summaries = [r for r in group if is_summary(r)]
        features = [r for r in group if not is_summary(r)]
        for r in features:
            details = _details(r)
            change = (f"{_side(details.get('reference', {}))} -> {_side(details.get('current', {}))}"
                      if details else "")
            table.add_row(r.feature, _verdict(r), _number(r.score), _number(r.threshold), r.method, change,
                          f"{r.n_reference}/{r.n_current}")
        if features:
            console.print(table)
        else:
            console.print(f"[bold]drift: {model} on {first.host}[/bold]")
        console.print(f"  current window {first.window_start:%Y-%m-%d %H:%M} .. {first.window_end:%Y-%m-%d %H:%M} "
                      f"UTC, reference {first.reference_start:%Y-%m-%d %H:%M} .. "
                      f"{first.reference_end:%Y-%m-%d %H:%M} UTC")
        for s in summaries:
            details = _details(s)
            if is_insufficient(s):
                console.print(f"  [yellow]insufficient data[/yellow]: {details.get('reason', '')}")
                continue
            drifted = details.get("drifted", [])
            line = (f"  {len(drifted)} of {details.get('tested', '?')} features drifted "
                    f"({100 * s.score:.0f}%; dataset drift at {100 * s.threshold:.0f}%)")
            console.print(f"{line}: {_verdict(s)}")
            for feature, reason in details.get("skipped", {}).items():
                console.print(f"  [dim]skipped {feature}: {reason}[/dim]")
            texts = details.get("parts", {}).get("captured_outputs", {})
            if texts.get("status") == "insufficient_data":
                console.print(f"  [dim]text drift not tested: {texts.get('reason', '')}[/dim]")
