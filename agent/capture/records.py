"""Turning one proxied exchange into its RequestRecord (and, when sampled, a redacted output)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agent.capture.descriptors import describe_output
from agent.capture.observe import OutputObserver
from agent.capture.redact import redact
from agent.capture.request_info import NOT_JSON, RequestInfo
from agent.config import CaptureSettings
from agent.samples import CapturedOutput, RequestRecord

_ROUTE_CHARS = 255
_MODEL_CHARS = 255


@dataclass(slots=True)
class Exchange:
    """Mutable state of one request while it is proxied. Times are from the proxy's timer."""

    ts: datetime
    started: float
    request_id: str
    method: str
    path: str
    caller: str
    info: RequestInfo = NOT_JSON
    status: int = 0
    stream: bool = False
    finished: float | None = None
    error: str | None = None
    final_delivered: bool = False
    """The stream's end ([DONE], or a Responses API end event) was written to the client."""
    observer: OutputObserver = field(default_factory=OutputObserver)
    team: str | None = None

    @property
    def model(self) -> str:
        return self.info.model[:_MODEL_CHARS]


def build_record(ex: Exchange, *, host: str, upstream: str, capture: CaptureSettings,
                 simulated: bool = False) -> tuple[RequestRecord, str]:
    """The record, and the output text (in memory only, for optional sampling; empty when none)."""
    obs = ex.observer
    finished = ex.finished if ex.finished is not None else ex.started
    text = obs.text() if obs.has_output else ""
    described = describe_output(text, refusal_phrases=capture.refusal_phrases,
                                json_requested=ex.info.json_requested, refusal_field=obs.refusal_field,
                                complete=not obs.truncated and ex.error is None) if obs.has_output else None
    gaps = obs.gap_stats()
    record = RequestRecord(
        ts=ex.ts,
        host=host,
        request_id=ex.request_id,
        upstream=upstream,
        route=ex.path[:_ROUTE_CHARS],
        method=ex.method,
        model=ex.model,
        status=ex.status,
        stream=ex.stream,
        caller=ex.caller,
        team=ex.team,
        prompt_tokens=obs.prompt_tokens,
        completion_tokens=obs.completion_tokens,
        cached_tokens=obs.cached_tokens,
        ttft_seconds=obs.first_at - ex.started if ex.stream and obs.first_at is not None else None,
        latency_seconds=max(finished - ex.started, 0.0),
        chunks=obs.chunks,
        gap_mean_seconds=gaps[0] if gaps else None,
        gap_p99_seconds=gaps[1] if gaps else None,
        gap_max_seconds=gaps[2] if gaps else None,
        finish_reason=obs.finish_reason[:32] if obs.finish_reason else None,
        output_chars=described.output_chars if described else None,
        refusal=described.refusal if described else None,
        json_requested=ex.info.json_requested,
        json_valid=described.json_valid if described else None,
        non_ascii_ratio=described.non_ascii_ratio if described else None,
        error=(ex.error or obs.error),
        simulated=simulated,
        reasoning_tokens=obs.reasoning_tokens,
    )
    return record, text


def sample_output(record: RequestRecord, text: str, *, capture: CaptureSettings,
                  rng: random.Random) -> CapturedOutput | None:
    """A redacted copy of the output for a sampled share of successful requests, or None."""
    if not capture.store_text or not text or record.status != 200 or record.error:
        return None
    if rng.random() >= capture.text_sample_ratio:
        return None
    return CapturedOutput(
        ts=record.ts,
        host=record.host,
        request_id=record.request_id,
        model=record.model,
        text=redact(text),
        expires_at=record.ts + timedelta(days=capture.text_retention_days),
    )
