"""Request records and captured texts for drift tests and the drift benchmark, drawn from seeded
generators: two windows whose distributions are known to be equal or known to differ in named
features, which a real capture cannot promise."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from agent.config import DriftSettings
from agent.samples import CapturedOutput, RequestRecord

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOST = "gpu-node-1"
MODEL = "llama-3.1-8b"

SETTINGS = DriftSettings(reference_days=1, current_hours=2, min_rows=100, max_rows=2000)
"""Current window: the 2 hours up to NOW; reference: the day before it."""

REFUSAL = "I'm sorry, but I can't help with that request."

TOPIC_A = ("recipe oven flour butter sugar bake minutes dough knead yeast bread crust slice garden tomato "
           "basil garlic onion simmer sauce pasta boil salt pepper olive roast chicken lemon herbs salad "
           "fresh kitchen bowl whisk eggs milk cream cheese vanilla chocolate cake frosting cookie tray "
           "grill skillet stir chop carrot potato soup broth spice cinnamon honey berries").split()
TOPIC_B = ("invoice payment account balance transfer ledger quarterly revenue expense audit compliance tax "
           "deduction portfolio dividend equity bond yield interest mortgage loan credit debit statement "
           "budget forecast margin profit asset liability capital shareholder filing regulator fiscal "
           "depreciation amortization accrual payroll vendor receivable payable treasury hedge").split()


@dataclass(frozen=True, slots=True)
class Traffic:
    """How one window's requests are drawn. `shifted()` is the drift scenario of the tests."""

    tokens_mean: float = 220.0
    refusal_rate: float = 0.02
    json_share: float = 0.5
    json_valid_rate: float = 0.97
    stream_share: float = 0.7

    def shifted(self) -> Traffic:
        return replace(self, tokens_mean=self.tokens_mean * 2.0, refusal_rate=self.refusal_rate * 10,
                       json_valid_rate=0.6)


def make_records(n: int, start: datetime, end: datetime, traffic: Traffic, seed: int, *,
                 model: str = MODEL, host: str = HOST) -> list[RequestRecord]:
    """`n` successful requests spread evenly over [start, end)."""
    rng = random.Random(seed)
    step = (end - start) / n
    out = []
    for i in range(n):
        refusal = rng.random() < traffic.refusal_rate
        json_requested = rng.random() < traffic.json_share
        tokens = 12 if refusal else max(1, int(rng.lognormvariate(0, 0.35) * traffic.tokens_mean))
        stream = rng.random() < traffic.stream_share
        out.append(RequestRecord(
            ts=start + step * i, host=host, request_id=f"{seed}-{i}", upstream="http://127.0.0.1:8000",
            route="/v1/chat/completions", method="POST", model=model, status=200, stream=stream,
            caller="c0", prompt_tokens=rng.randint(50, 400), completion_tokens=tokens, cached_tokens=0,
            ttft_seconds=rng.gammavariate(4, 0.03) if stream else None,
            latency_seconds=rng.gammavariate(6, 0.5), chunks=tokens if stream else 0,
            finish_reason="stop" if refusal or rng.random() < 0.85 else "length",
            output_chars=int(tokens * rng.uniform(3.6, 4.4)), refusal=refusal, json_requested=json_requested,
            json_valid=(rng.random() < traffic.json_valid_rate) if json_requested else None,
            non_ascii_ratio=rng.betavariate(1, 200),
        ))
    return out


def make_texts(n: int, start: datetime, end: datetime, vocabulary: tuple[str, ...] | list[str], seed: int, *,
               model: str = MODEL, host: str = HOST, retention: timedelta = timedelta(days=3)) -> list[CapturedOutput]:
    rng = random.Random(seed)
    step = (end - start) / n
    out = []
    for i in range(n):
        sentences = []
        for _ in range(rng.randint(1, 4)):
            words = [rng.choice(vocabulary) for _ in range(rng.randint(5, 14))]
            sentences.append(" ".join(words).capitalize() + ".")
        text = REFUSAL if rng.random() < 0.02 else " ".join(sentences)
        ts = start + step * i
        out.append(CapturedOutput(ts=ts, host=host, request_id=f"t{seed}-{i}", model=model, text=text,
                                  expires_at=ts + retention))
    return out
