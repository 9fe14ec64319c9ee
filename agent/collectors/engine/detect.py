"""Which kind of server served a page, told from its metric family names."""

from __future__ import annotations

from collections.abc import Iterable

from agent.collectors.engine.maps import SERVER_MAPS, ServerMap


def detect_server(family_names: Iterable[str]) -> ServerMap | None:
    """The server map whose prefix most families carry (vllm:, sglang:, tgi_, llamacpp:); None if none does.

    Ties go to the earlier map in SERVER_MAPS, so a page is always read the same way."""
    counts = [0] * len(SERVER_MAPS)
    prefixes = [m.prefix for m in SERVER_MAPS]
    for name in family_names:
        for i, prefix in enumerate(prefixes):
            if name.startswith(prefix):
                counts[i] += 1
                break
    best = max(range(len(counts)), key=lambda i: (counts[i], -i))
    return SERVER_MAPS[best] if counts[best] else None
