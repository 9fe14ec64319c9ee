"""The declaration of one exported metric family."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FamilyKind = Literal["gauge", "counter", "histogram", "info"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """An exported family: full name (counters end in `_total`), kind, help and label names."""

    name: str
    kind: FamilyKind
    help: str
    labels: tuple[str, ...] = ()
