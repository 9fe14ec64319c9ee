"""Output descriptors computed as a response ends, from text held only in memory.

There is no language descriptor: a language-identification library costs milliseconds per text on
the proxy's event loop, and a word-list guess would be a label that looks surer than it is. A switch
of script shows in `non_ascii_ratio`; a switch of language in the drift worker's text features
(non-letter share, and the TF-IDF classifier on the words themselves)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

REFUSAL_WINDOW_CHARS = 400
"""Refusals open the answer; scanning only the start keeps a long essay that quotes "as an AI"
from counting, and bounds the cost."""


@dataclass(frozen=True, slots=True)
class OutputDescriptors:
    output_chars: int
    non_ascii_ratio: float | None
    refusal: bool
    json_valid: bool | None


def _normalize(text: str) -> str:
    return text.lower().replace("\u2019", "'")


@functools.lru_cache(maxsize=8)
def _refusal_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    wanted = [re.escape(_normalize(p)) for p in phrases if p.strip()]
    return re.compile("|".join(wanted)) if wanted else None


def matches_refusal(text: str, phrases: Iterable[str]) -> bool:
    pattern = _refusal_pattern(tuple(phrases))
    return pattern is not None and pattern.search(_normalize(text[:REFUSAL_WINDOW_CHARS])) is not None


def is_valid_json(text: str) -> bool:
    stripped = text.strip()
    if stripped.startswith("```"):  # models often fence JSON; a fenced object is still the object asked for
        stripped = stripped.strip("`").removeprefix("json").strip()
    try:
        json.loads(stripped)
    except (ValueError, RecursionError):
        return False
    return True


def describe_output(text: str, *, refusal_phrases: Iterable[str], json_requested: bool,
                    refusal_field: bool = False, complete: bool = True) -> OutputDescriptors:
    """`refusal_field`: the upstream set the OpenAI `refusal` member. `complete=False` when the text
    was cut at the in-memory limit: JSON validity is then unknown."""
    chars = len(text)
    non_ascii = chars - len(text.encode("ascii", "ignore"))
    return OutputDescriptors(
        output_chars=chars,
        non_ascii_ratio=non_ascii / chars if chars else None,
        refusal=refusal_field or matches_refusal(text, refusal_phrases),
        json_valid=(is_valid_json(text) if complete else None) if json_requested else None,
    )
