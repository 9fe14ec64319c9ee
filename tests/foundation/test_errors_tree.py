"""One exception tree: every public exception campwatch defines lives in agent/errors.py and is
drawn in its docstring (module-private control-flow exceptions, `_Name`, may stay where they are)."""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

import agent.errors as errors

AGENT = Path(errors.__file__).resolve().parent
TREE = {name for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__}
BUILTIN = {name for name, obj in vars(builtins).items() if inspect.isclass(obj) and issubclass(obj, BaseException)}


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def test_no_public_exception_is_defined_outside_agent_errors() -> None:
    classes = []  # (where, name, base names) of every class outside agent/errors.py
    for path in sorted(AGENT.rglob("*.py")):
        if path == AGENT / "errors.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                classes.append((f"{path.relative_to(AGENT.parent)}:{node.lineno}", node.name,
                                {_base_name(b) for b in node.bases}))
    exceptions = TREE | BUILTIN
    while True:  # subclasses of subclasses defined elsewhere count too
        more = {name for _, name, bases in classes if bases & exceptions} - exceptions
        if not more:
            break
        exceptions |= more
    elsewhere = [f"{where} {name}" for where, name, bases in classes
                 if bases & exceptions and not name.startswith("_")]
    assert elsewhere == []


def _drawn() -> set[str]:
    names = set()
    for line in (errors.__doc__ or "").splitlines():
        text = line.strip().lstrip("│ ")
        if text.startswith(("├── ", "└── ")):
            names.add(text[4:].split()[0])
        elif text.startswith("CampwatchError"):
            names.add("CampwatchError")
    return names


def test_every_exception_in_agent_errors_is_drawn_in_its_tree() -> None:
    assert _drawn() == TREE
