"""What a response carried, read as it passes: usage, finish reason, output text (in memory only),
and chunk timing. Knows the OpenAI response shapes (chat and text completions and the Responses
API, streamed or not, embeddings' usage); everything else is ignored, never rejected.

Responses API events (`type` member) follow OpenAI's documented stream: output deltas
(`response.output_text.delta`, and like chat's reasoning/tool-call deltas, `response.reasoning_text.delta`,
`response.reasoning_summary_text.delta`, `response.function_call_arguments.delta`,
`response.refusal.delta`) time the chunks (TTFT is the first of them); `response.completed`,
`response.incomplete` and `response.failed` carry the usage and end the stream."""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import Any

from agent.capture.jsonobj import json_object
from agent.capture.sse import event_data

TEXT_LIMIT_CHARS = 1_000_000
"""Output text held for descriptors; beyond it characters are still counted."""

_RESPONSE_DELTAS = frozenset({
    "response.output_text.delta", "response.refusal.delta", "response.reasoning_text.delta",
    "response.reasoning_summary_text.delta", "response.function_call_arguments.delta",
})
"""Responses API events that carry output (chat's content, reasoning, tool-call and refusal deltas)."""

_RESPONSE_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})

_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
"""Responses API incomplete_details.reason -> the chat finish_reason with the same meaning."""

_USAGE_TAIL = re.compile(rb'"usage"\s*:\s*(\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\})')


class OutputObserver:
    """Fed SSE events or a whole JSON body; holds what the record needs. `strip_usage`: the proxy
    added include_usage, so the usage-only chunk is reported as not to be forwarded."""

    __slots__ = ("_pieces", "_text_chars", "cached_tokens", "chars", "chunks", "completion_tokens", "done",
                 "error", "final_seen", "finish_reason", "first_at", "gaps", "last_at", "last_finished",
                 "prompt_tokens", "reasoning_tokens", "refusal_field", "strip_usage", "truncated",
                 "usage_stripped")

    def __init__(self, *, strip_usage: bool = False) -> None:
        self.strip_usage = strip_usage
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.cached_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        self.finish_reason: str | None = None
        self.refusal_field = False
        self.error: str | None = None
        self.done = False
        self.final_seen = False  # [DONE] or a Responses API end event: the client got the whole answer
        self.last_finished = False  # the last event parsed carried choice 0's finish_reason
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
        self.last_finished = False
        payload = event_data(event)
        if payload is None:
            return True
        if payload == b"[DONE]":
            self.done = self.final_seen = True
            return True
        obj = json_object(payload)
        if obj is None:
            return True
        kind = obj.get("type")
        if isinstance(kind, str) and "choices" not in obj:
            self._on_response_event(kind, obj, now)
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
        if isinstance(choices, list):
            self._take_choices(choices, "delta", now)
        return True

    def _take_choices(self, choices: list[Any], member: str, now: float | None) -> None:
        """Choice 0 of a streamed chunk (member "delta", `now` its arrival) or of a whole body
        ("message", None): its text, refusal field and finish reason."""
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            part = choice.get(member)
            if isinstance(part, dict):
                text = part.get("content")
                if part.get("refusal"):
                    self.refusal_field = True
                bearing = bool(text or part.get("reasoning_content") or part.get("reasoning")
                               or part.get("tool_calls") or part.get("refusal"))
            else:
                text = choice.get("text")
                bearing = bool(text)
            if bearing and now is not None:
                self._chunk(now)
            if text and isinstance(text, str):
                self._add_text(text)
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = str(reason)
                if now is not None:
                    self.last_finished = True

    def _chunk(self, now: float) -> None:
        if self.last_at is not None:
            self.gaps.append(now - self.last_at)
        else:
            self.first_at = now
        self.last_at = now
        self.chunks += 1

    def _on_response_event(self, kind: str, obj: dict[str, Any], now: float) -> None:
        if kind in _RESPONSE_DELTAS:
            self._chunk(now)
            delta = obj.get("delta")
            if kind == "response.output_text.delta" and isinstance(delta, str):
                self._add_text(delta)
            elif kind == "response.refusal.delta":
                self.refusal_field = True
        elif kind in _RESPONSE_ENDS:
            self.final_seen = True
            response = obj.get("response")
            if isinstance(response, dict):
                self._take_response_end(response)
        elif kind == "error":
            self.error = "upstream_error_event"

    def _take_response_end(self, response: dict[str, Any]) -> None:
        """A Responses API response object's usage and status (the body, or an end event's member)."""
        usage = response.get("usage")
        if usage:
            self._take_usage(usage)
        status = response.get("status")
        if status == "completed":
            self.finish_reason = "stop"
        elif status == "incomplete":
            details = response.get("incomplete_details")
            reason = details.get("reason") if isinstance(details, dict) else None
            self.finish_reason = _INCOMPLETE_REASONS.get(str(reason), str(reason or "incomplete"))
        elif status == "failed":
            self.finish_reason = "error"
            self.error = "upstream_error_event"

    # --- whole bodies ----------------------------------------------------------------------------
    def on_body(self, body: bytes, *, complete: bool = True) -> None:
        """Take a non-streamed JSON response. An incomplete (over-limit) body yields usage only."""
        if not complete:
            match = _USAGE_TAIL.search(body[-4096:])
            if match:
                with contextlib.suppress(ValueError):
                    self._take_usage(json.loads(match.group(1)))
            return
        obj = json_object(body)
        if obj is None:
            return
        if obj.get("object") == "response":
            self._take_response_body(obj)
            return
        usage = obj.get("usage")
        if usage:
            self._take_usage(usage)
        choices = obj.get("choices")
        if isinstance(choices, list):
            self._take_choices(choices, "message", None)

    def _take_response_body(self, obj: dict[str, Any]) -> None:
        self._take_response_end(obj)
        output = obj.get("output")
        if not isinstance(output, list):
            return
        for item in output:
            if not isinstance(item, dict) or item.get("type") != "message":
                continue
            content = item.get("content")
            for part in content if isinstance(content, list) else ():
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    self._add_text(part["text"])
                elif part.get("type") == "refusal":
                    self.refusal_field = True

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
        """Chat/completions usage (prompt_tokens, completion_tokens, *_details) or the Responses
        API's (input_tokens, output_tokens, *_details): the same four figures under other names."""
        if not isinstance(usage, dict):
            return
        responses = "input_tokens" in usage or "output_tokens" in usage
        prefix = ("input", "output") if responses else ("prompt", "completion")
        prompt = usage.get(f"{prefix[0]}_tokens")
        completion = usage.get(f"{prefix[1]}_tokens")
        details = usage.get(f"{prefix[0]}_tokens_details")
        out_details = usage.get(f"{prefix[1]}_tokens_details")
        if _count(prompt):
            self.prompt_tokens = prompt
        if _count(completion):
            self.completion_tokens = completion
        if isinstance(details, dict) and _count(details.get("cached_tokens")):
            self.cached_tokens = details["cached_tokens"]
        if isinstance(out_details, dict) and _count(out_details.get("reasoning_tokens")):
            self.reasoning_tokens = out_details["reasoning_tokens"]


def _count(value: object) -> bool:
    """A token count: an int that is not a bool (JSON true would pass isinstance(int))."""
    return isinstance(value, int) and not isinstance(value, bool)
