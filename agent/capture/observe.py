"""What a response carried, read as it passes: usage, finish reason, output text (in memory only),
and chunk timing. Knows the OpenAI response shapes (chat and text completions, streamed or not,
embeddings' usage); everything else is ignored, never rejected."""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import Any

from agent.capture.sse import event_data

TEXT_LIMIT_CHARS = 1_000_000
"""Output text held for descriptors; beyond it characters are still counted."""

_USAGE_TAIL = re.compile(rb'"usage"\s*:\s*(\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\})')


class OutputObserver:
    """Fed SSE events or a whole JSON body; holds what the record needs. `strip_usage`: the proxy
    added include_usage, so the usage-only chunk is reported as not to be forwarded."""

    __slots__ = ("_pieces", "_text_chars", "cached_tokens", "chars", "chunks", "completion_tokens", "done",
                 "error", "finish_reason", "first_at", "gaps", "last_at", "prompt_tokens", "refusal_field",
                 "strip_usage", "truncated", "usage_stripped")

    def __init__(self, *, strip_usage: bool = False) -> None:
        self.strip_usage = strip_usage
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.cached_tokens: int | None = None
        self.finish_reason: str | None = None
        self.refusal_field = False
        self.error: str | None = None
        self.done = False
        self.usage_stripped = False
        self.chunks = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.gaps: list[float] = []
        self.chars = 0
        self.truncated = False
        self._pieces: list[str] = []
        self._text_chars = 0

    # --- streaming -------------------------------------------------------------------------------
    def on_event(self, event: bytes, now: float) -> bool:
        """Take one raw SSE event; returns False for the injected usage chunk (not to be forwarded)."""
        payload = event_data(event)
        if payload is None:
            return True
        if payload == b"[DONE]":
            self.done = True
            return True
        try:
            obj = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return True
        if not isinstance(obj, dict):
            return True
        usage = obj.get("usage")
        if usage:
            self._take_usage(usage)
        choices = obj.get("choices")
        if not choices:
            if obj.get("error") is not None:
                self.error = "upstream_error_event"
            if self.strip_usage and usage and choices == []:
                self.usage_stripped = True
                return False
            return True
        if not isinstance(choices, list):
            return True
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                text = delta.get("content")
                if delta.get("refusal"):
                    self.refusal_field = True
                bearing = bool(text or delta.get("reasoning_content") or delta.get("reasoning")
                               or delta.get("tool_calls") or delta.get("refusal"))
            else:
                text = choice.get("text")
                bearing = bool(text)
            if bearing:
                if self.last_at is not None:
                    self.gaps.append(now - self.last_at)
                else:
                    self.first_at = now
                self.last_at = now
                self.chunks += 1
            if text and isinstance(text, str):
                self._add_text(text)
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = str(reason)
        return True

    # --- whole bodies ----------------------------------------------------------------------------
    def on_body(self, body: bytes, *, complete: bool = True) -> None:
        """Take a non-streamed JSON response. An incomplete (over-limit) body yields usage only."""
        if not complete:
            match = _USAGE_TAIL.search(body[-4096:])
            if match:
                with contextlib.suppress(ValueError):
                    self._take_usage(json.loads(match.group(1)))
            return
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return
        if not isinstance(obj, dict):
            return
        usage = obj.get("usage")
        if usage:
            self._take_usage(usage)
        choices = obj.get("choices")
        if not isinstance(choices, list):
            return
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            message = choice.get("message")
            if isinstance(message, dict):
                text = message.get("content")
                if message.get("refusal"):
                    self.refusal_field = True
            else:
                text = choice.get("text")
            if text and isinstance(text, str):
                self._add_text(text)
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = str(reason)

    # --- results ---------------------------------------------------------------------------------
    @property
    def has_output(self) -> bool:
        return self.chars > 0 or self.finish_reason is not None

    def text(self) -> str:
        return "".join(self._pieces)

    def gap_stats(self) -> tuple[float, float, float] | None:
        """(mean, p99, max) of the gaps between output chunks, None with fewer than two chunks."""
        gaps = self.gaps
        if not gaps:
            return None
        ordered = sorted(gaps)
        p99 = ordered[math.ceil(0.99 * len(ordered)) - 1]  # nearest rank
        return sum(ordered) / len(ordered), p99, ordered[-1]

    def _add_text(self, text: str) -> None:
        self.chars += len(text)
        if self._text_chars < TEXT_LIMIT_CHARS:
            self._pieces.append(text)
            self._text_chars += len(text)
        else:
            self.truncated = True

    def _take_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens")
        details = usage.get("prompt_tokens_details")
        if isinstance(prompt, int):
            self.prompt_tokens = prompt
        if isinstance(completion, int):
            self.completion_tokens = completion
        if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
            self.cached_tokens = details["cached_tokens"]
