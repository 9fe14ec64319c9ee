"""Imports run one way: from agent's own source (parsed, not imported), no module imports a layer
above its own, and sideways imports between two rooms of one layer are only those listed here.

The same table is drawn in the README ("Architecture"); change both together."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ground", ("agent", "agent.samples", "agent.errors", "agent.config", "agent.config_keys", "agent.urls",
                "agent.utc", "agent.counters", "agent.quantile", "agent.periods", "agent.metric_spec", "agent.concepts",
                "agent.sinks", "agent.telemetry", "agent.collectors", "agent.listen", "agent.logs",
                "agent.loglimit", "agent.passwords", "agent.extras", "agent.heap")),
    ("store, exporters", ("agent.store", "agent.exporters")),
    ("areas", ("agent.collectors.gpu", "agent.collectors.engine", "agent.capture", "agent.cost", "agent.drift")),
    ("review, sim", ("agent.review", "agent.sim")),
    ("wiring", ("agent.runner", "agent.wiring", "agent.catalog", "agent.demo", "agent.publish")),
    ("cli", ("agent.cli",)),
)
"""Lowest first. A room is a module or a package (with everything under it); a module belongs to the
longest room that contains it (agent.collectors.base is ground, agent.collectors.gpu.nvml an area).
The ground floor's small modules may import one another; every other room imports its own layer
only through a pair in SIDEWAYS."""

SIDEWAYS: frozenset[tuple[str, str]] = frozenset({
    ("agent.wiring", "agent.runner"),  # wiring builds the runner
    ("agent.wiring", "agent.catalog"),  # and hands the catalog to the exporters
    ("agent.demo", "agent.wiring"),  # the demo runs the agent as `campwatch run` builds it
    ("agent.publish", "agent.catalog"),  # docs/otlp.md is written from the whole catalog
})

PRODUCERS: tuple[str, ...] = ("agent.collectors.gpu", "agent.collectors.engine", "agent.capture")
"""Parts that make samples and records: they hand rows to an agent.sinks.RowSink and never import
the store (the runner and wiring connect them to it)."""
STORE = "agent.store"


@dataclass(frozen=True, slots=True)
class Import:
    file: str
    line: int
    importer: str
    imported: str


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str, root: Path) -> bool:
    base = root.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def agent_imports(root: Path) -> list[Import]:
    """Every import of an agent module by an agent module, with its file and line."""
    found: list[Import] = []
    for path in sorted((root / "agent").rglob("*.py")):
        importer = _module_name(path, root)
        package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        rel = str(path.relative_to(root))
        for node in ast.walk(ast.parse(path.read_text(), filename=rel)):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                # `from agent.x import y` imports agent.x.y when y is a module
                subs = [f"{module}.{a.name}" for a in node.names if _is_module(f"{module}.{a.name}", root)]
                targets = subs if len(subs) == len(node.names) else [module, *subs]
            found.extend(Import(rel, node.lineno, importer, t) for t in targets
                         if t == "agent" or t.startswith("agent."))
    return found


def room_of(module: str) -> str | None:
    best: str | None = None
    for _, rooms in LAYERS:
        for room in rooms:
            inside = module == room or (room != "agent" and module.startswith(room + "."))
            if inside and (best is None or len(room) > len(best)):
                best = room
    return best


def layer_of(room: str) -> int:
    return next(i for i, (_, rooms) in enumerate(LAYERS) if room in rooms)


def violations(root: Path) -> list[str]:
    out: list[str] = []
    unplaced: set[str] = set()
    for imp in agent_imports(root):
        src, dst = room_of(imp.importer), room_of(imp.imported)
        if src is None or dst is None:
            unplaced.update(m for m, r in ((imp.importer, src), (imp.imported, dst)) if r is None)
            continue
        if src == dst:
            continue
        i, j = layer_of(src), layer_of(dst)
        where = f"{imp.file}:{imp.line}: {imp.importer} imports {imp.imported}"
        if j > i:
            out.append(f"{where}: upward ({LAYERS[i][0]} -> {LAYERS[j][0]})")
        elif j == i and i != 0 and (src, dst) not in SIDEWAYS:
            out.append(f"{where}: sideways within {LAYERS[i][0]} ({src} -> {dst}), not listed in SIDEWAYS")
        if src in PRODUCERS and dst == STORE:
            out.append(f"{where}: a producer imports the store (producers hand rows to an agent.sinks.RowSink "
                       "and read which concepts are stored from agent.concepts)")
    out.extend(f"{m}: not in the layer table (place it in LAYERS and in the README)" for m in sorted(unplaced))
    return out


def test_no_agent_module_imports_a_layer_above_its_own_or_an_unlisted_neighbour() -> None:
    found = violations(ROOT)
    assert found == [], "\n" + "\n".join(found)


def test_every_agent_module_has_a_place_in_the_layer_table() -> None:
    modules = [_module_name(p, ROOT) for p in sorted((ROOT / "agent").rglob("*.py"))]
    assert [m for m in modules if room_of(m) is None] == []


def test_every_listed_room_exists_and_every_sideways_pair_is_still_used() -> None:
    rooms = [room for _, rs in LAYERS for room in rs]
    assert len(rooms) == len(set(rooms))
    assert [room for room in rooms if not _is_module(room, ROOT)] == []
    used = {(room_of(i.importer), room_of(i.imported)) for i in agent_imports(ROOT)}
    assert sorted(SIDEWAYS - used) == []


@pytest.mark.parametrize(("source", "expected"), [
    ("from agent.store.schema import gpu_samples\n", "a producer imports the store"),
    ("from agent.catalog import CATALOG\n", "upward (areas -> wiring)"),
    ("from agent.cost import measure\n", "sideways within areas (agent.collectors.engine -> agent.cost)"),
])
def test_a_wrong_way_import_is_reported_with_its_file_and_line(tmp_path: Path, source: str, expected: str) -> None:
    for rel in ("agent/__init__.py", "agent/catalog.py", "agent/store/__init__.py", "agent/store/schema.py",
                "agent/cost/__init__.py", "agent/cost/measure.py", "agent/collectors/__init__.py",
                "agent/collectors/engine/__init__.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / "agent/collectors/engine/collector.py").write_text('"""doc"""\n\n' + source)
    found = violations(tmp_path)
    assert len(found) == 1
    assert found[0].startswith("agent/collectors/engine/collector.py:3: agent.collectors.engine.collector imports ")
    assert expected in found[0]


def test_the_readme_draws_the_same_layer_table() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    drawn: dict[int, tuple[str, ...]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            drawn[int(cells[0])] = tuple(sorted(re.findall(r"`([a-z_.]+)`", cells[1])))
    expected = {i: tuple(sorted(r.removeprefix("agent.") for r in rooms if r != "agent"))
                for i, (_, rooms) in enumerate(LAYERS)}
    assert drawn == expected
