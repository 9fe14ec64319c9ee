"""Optional installs: the sidecar's core runs without them; drift checks and the review notebooks
need their extra (pyproject.toml [project.optional-dependencies]). Checked by module presence, without
importing the (heavy) modules."""

from __future__ import annotations

import importlib.util
from typing import Literal

from agent.errors import MissingExtra

Extra = Literal["drift", "review"]

EXTRA_MODULES: dict[Extra, tuple[str, ...]] = {
    "drift": ("evidently", "pandas"),
    "review": ("pandas", "matplotlib", "papermill", "nbconvert", "ipykernel"),
}
"""The top-level modules each extra provides, as its pyproject.toml entry installs them."""


def missing_modules(extra: Extra) -> list[str]:
    """The modules of `extra` that cannot be imported here (empty when it is installed)."""
    return [name for name in EXTRA_MODULES[extra] if importlib.util.find_spec(name) is None]


def require_extra(extra: Extra, what: str) -> None:
    """Raise MissingExtra naming the extra when any of its modules is absent."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtra(extra, what, missing)
