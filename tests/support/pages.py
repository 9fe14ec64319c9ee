"""Captured /metrics pages for tests and benchmarks (tests/fixtures), replayed as they grow.

`GrowingPage` replays a captured or constructed page with counters and histograms that grow by a
known amount per step (and can restart from zero), so SLIs over it can be checked by hand. Live
vLLM pages (models x engine cores, restarts, the 0.32 families) come from the one vLLM page
simulator, agent.sim.vllm_metrics.VllmMetrics; `V1_MODELS` and `V1_ENGINES` are the fleet the
engine tests give it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
V1_MODELS = ("meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct")
V1_ENGINES = ("0", "1")


def fixture_text(relative: str) -> str:
    return (FIXTURES / relative).read_text(encoding="utf-8")


_LE = re.compile(r'le="([^"]+)"')


class GrowingPage:
    """A page whose counters grow by `counter_step` (or `counter_steps[family]`) and whose
    histograms gain `observations` observations of `observed_value` (per family name, else the
    bound of the histogram's middle finite bucket) at every step. After `restart()` every counter
    and histogram starts again from zero, then keeps growing; gauges keep their captured values.

    This is test scaffolding that rewrites sample values line by line; the product's parser is
    prometheus_client's."""

    def __init__(self, text: str, *, counter_step: float = 10.0, observations: int = 2,
                 observed_value: Mapping[str, float] | None = None,
                 counter_steps: Mapping[str, float] | None = None) -> None:
        self.lines = text.splitlines()
        self.counter_step = counter_step
        self.counter_steps = dict(counter_steps or {})
        self.observations = observations
        self.observed_value = dict(observed_value or {})
        self.step = 0
        self.restarted = False
        self.types: dict[str, str] = {}
        self._bounds: dict[str, list[float]] = {}
        family = ""
        for line in self.lines:
            if line.startswith("# TYPE "):
                _, _, family, kind = line.split(" ", 3)
                self.types[family] = kind
            elif line and not line.startswith("#") and self.types.get(family) == "histogram":
                match = _LE.search(line)
                if match and line.startswith(family + "_bucket"):
                    self._bounds.setdefault(family, []).append(float(match.group(1)))

    def value_of(self, family: str) -> float:
        """The value each histogram observation has."""
        if family in self.observed_value:
            return self.observed_value[family]
        finite = sorted({b for b in self._bounds.get(family, []) if not math.isinf(b)})
        return finite[len(finite) // 2] if finite else 1.0

    def advance(self, steps: int = 1) -> None:
        self.step += steps

    def restart(self) -> None:
        self.restarted = True
        self.step = 0

    def render(self) -> str:
        out: list[str] = []
        family = ""
        base = 0.0 if self.restarted else 1.0
        n = self.step * self.observations
        for line in self.lines:
            if line.startswith("# TYPE "):
                family = line.split(" ", 3)[2]
            if not line or line.startswith("#"):
                out.append(line)
                continue
            head, raw = line.rsplit(" ", 1)
            value = float(raw)
            kind = self.types.get(family, "untyped")
            name = head.split("{", 1)[0]
            if kind == "counter":
                value = value * base + self.step * self.counter_steps.get(family, self.counter_step)
            elif kind == "histogram":
                observed = self.value_of(family)
                if name == family + "_bucket":
                    match = _LE.search(head)
                    bound = float(match.group(1)) if match else math.inf
                    value = value * base + (n if observed <= bound else 0)
                elif name == family + "_count":
                    value = value * base + n
                elif name == family + "_sum":
                    value = value * base + n * observed
            out.append(f"{head} {value!r}")
        return "\n".join(out) + "\n"
