"""API baselines through genai-prices (bundled data, offline) and the local price file."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices import Usage, calc_price

from agent.config import BaselineSettings
from agent.cost.baselines import (
    Baseline,
    TokenUsage,
    price_histograms,
    price_usages,
    resolve_baselines,
    tier_starts,
)
from agent.cost.pricefile import parse_price_data
from agent.errors import CostError, FieldSpecError
from agent.samples import HistogramSnapshot
from tests.cost.cost_helpers import T0, cost_settings

SONNET = BaselineSettings(provider="anthropic", model="claude-sonnet-4-5")


def baseline(provider: str, model: str, discount: str = "0", **kw: object) -> Baseline:
    settings = cost_settings(baselines=(BaselineSettings(provider=provider, model=model,
                                                         discount=Decimal(discount)),), **kw)
    return resolve_baselines(settings)[0]


def reference(b: Baseline, ts: datetime, u: TokenUsage) -> Decimal:
    """genai-prices' own price of one request."""
    return calc_price(Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                            cache_read_tokens=u.cache_read_tokens),
                      b.resolved_model, provider_id=b.provider, genai_request_timestamp=ts).total_price


def test_claude_sonnet_4_5_resolves_and_has_a_long_context_tier_at_200k() -> None:
    b = baseline("anthropic", "claude-sonnet-4-5")
    assert b.resolved_model == "claude-sonnet-4-5"
    assert tier_starts(b.price_at(T0)) == (200_000,)
    assert "genai-prices" in b.source


def test_an_unknown_model_is_one_clear_error_naming_the_baseline() -> None:
    settings = cost_settings(baselines=(BaselineSettings(provider="openai", model="gpt-4o"),
                                        BaselineSettings(provider="openai", model="no-such-model"),
                                        BaselineSettings(provider="nowhere", model="x")))
    with pytest.raises(CostError) as err:
        resolve_baselines(settings)
    message = str(err.value)
    assert "cost.baselines[1] openai/no-such-model" in message
    assert "cost.baselines[2] nowhere/x" in message
    assert "gpt-4o" not in message.replace("e.g. openai/gpt-4o", "")


def test_requests_either_side_of_the_tier_boundary_pay_their_own_rate() -> None:
    b = baseline("anthropic", "claude-sonnet-4-5")
    below, above = TokenUsage(200_000, 1_000), TokenUsage(200_001, 1_000)
    price = price_usages(b, [(T0, below), (T0, above)])
    # base: 200k x $3 + 1k x $15; long context: 200,001 x $6 + 1k x $22.5 (per million)
    expected = (Decimal("0.6") + Decimal("0.015")) + (Decimal("1.200006") + Decimal("0.0225"))
    assert price.total_usd == expected
    assert price.total_usd == reference(b, T0, below) + reference(b, T0, above)
    # Summing first and pricing once would put every token at the long-context rate.
    assert calc_price(Usage(input_tokens=400_001, output_tokens=2_000), "claude-sonnet-4-5",
                      provider_id="anthropic", genai_request_timestamp=T0).total_price > expected


@pytest.mark.parametrize(("provider", "model"), [("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4o"),
                                                 ("openai", "gpt-5"), ("deepseek", "deepseek-chat")])
def test_grouped_pricing_equals_the_sum_of_per_request_prices(provider: str, model: str) -> None:
    b = baseline(provider, model)
    rng = random.Random(7)
    items = []
    for i in range(300):
        prompt = rng.choice([rng.randint(1, 4000), rng.randint(150_000, 260_000)])
        cached = rng.randint(0, prompt) if i % 3 == 0 else 0
        # spread over a day, so deepseek's off-peak hours (16:30-00:30 UTC) are crossed
        items.append((T0 + timedelta(minutes=5 * i), TokenUsage(prompt, rng.randint(1, 2000), cached)))
    expected = sum((reference(b, ts, u) for ts, u in items), Decimal(0))
    assert price_usages(b, items).total_usd == expected


def test_cached_input_is_priced_at_the_cache_read_rate() -> None:
    b = baseline("openai", "gpt-4o")
    price = price_usages(b, [(T0, TokenUsage(1_000_000, 0, cache_read_tokens=400_000))])
    assert price.input_usd == Decimal("0.6") * Decimal("2.5") + Decimal("0.4") * Decimal("1.25")


def test_deepseek_is_cheaper_off_peak() -> None:
    b = baseline("deepseek", "deepseek-chat")
    u = TokenUsage(1_000_000, 1_000_000)
    peak = price_usages(b, [(datetime(2026, 3, 2, 10, tzinfo=UTC), u)]).total_usd
    off = price_usages(b, [(datetime(2026, 3, 2, 18, tzinfo=UTC), u)]).total_usd
    assert (peak, off) == (Decimal("1.37"), Decimal("0.685"))


def test_a_negotiated_discount_scales_the_price() -> None:
    full = price_usages(baseline("openai", "gpt-4o"), [(T0, TokenUsage(1_000_000, 1_000_000))])
    cut = price_usages(baseline("openai", "gpt-4o", "0.25"), [(T0, TokenUsage(1_000_000, 1_000_000))])
    assert full.total_usd == Decimal("12.5")
    assert cut.total_usd == Decimal("9.375")


def write_price_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    return str(path)


def test_the_price_file_overrides_genai_prices_and_keeps_its_tiers_and_provenance(tmp_path: Path) -> None:
    path = write_price_file(tmp_path, """
[[prices]]
provider = "anthropic"
model = "claude-sonnet-4-5"
input_mtok = "2"
output_mtok = 10
cache_read_mtok = "0.2"
as_of = 2026-01-15
source = "contract 2026-A"

[[prices.tiers]]
above_input_tokens = 100000
input_mtok = "4"
output_mtok = "15"
""")
    b = resolve_baselines(cost_settings(baselines=(SONNET,), price_file=path))[0]
    assert b.source == "price file (as of 2026-01-15): contract 2026-A"
    low = price_usages(b, [(T0, TokenUsage(100_000, 1_000))]).total_usd
    high = price_usages(b, [(T0, TokenUsage(100_001, 1_000))]).total_usd
    assert low == Decimal("0.2") + Decimal("0.01")
    assert high == Decimal("0.400004") + Decimal("0.015")


def test_a_model_only_in_the_price_file_can_be_a_baseline(tmp_path: Path) -> None:
    path = write_price_file(tmp_path, """
[[prices]]
provider = "acme"
model = "private-llm"
input_mtok = 1
output_mtok = 2
as_of = "2026-02-01"
source = "acme quote 17"
""")
    b = resolve_baselines(cost_settings(baselines=(BaselineSettings(provider="acme", model="private-llm"),),
                                        price_file=path))[0]
    assert price_usages(b, [(T0, TokenUsage(1_000_000, 1_000_000, 500_000))]).total_usd == Decimal(3)


def test_price_file_problems_are_listed_with_where_they_are() -> None:
    data = {"prices": [
        {"provider": "openai", "model": "gpt-4o", "input_mtok": "-1", "output_mtok": "x", "source": "",
         "tiers": [{"above_input_tokens": 10, "cache_read_mtok": 1}]},
        {"provider": "openai", "model": "gpt-5", "input_mtok": 1, "output_mtok": 2, "as_of": "yesterday",
         "source": "s", "colour": "red"},
    ]}
    with pytest.raises(FieldSpecError) as err:
        parse_price_data(data, "prices.toml")
    where = {p.where for p in err.value.problems}
    assert {"prices[0].input_mtok", "prices[0].output_mtok", "prices[0].source", "prices[0].as_of",
            "prices[0].tiers[0].cache_read_mtok", "prices[1].as_of", "prices[1].colour"} <= where


def test_histogram_pricing_without_tiers_is_exact() -> None:
    b = baseline("openai", "gpt-4o")
    prompt = HistogramSnapshot(((100.0, 1.0), (1000.0, 3.0), (float("inf"), 3.0)), 1500.0, 3.0)
    result = price_histograms(b, T0, prompt, TokenUsage(1500, 300, 100, 3))
    assert result.method == "histograms"
    assert result.price.total_usd == price_usages(b, [(T0, TokenUsage(1500, 300, 100))]).total_usd


def test_histogram_pricing_puts_long_prompts_in_the_long_context_tier() -> None:
    b = baseline("anthropic", "claude-sonnet-4-5")
    # 9 prompts of at most 200k (sum 450k), 1 above 200k (300k); 100 output tokens each.
    prompt = HistogramSnapshot(((100_000.0, 9.0), (200_000.0, 9.0), (500_000.0, 10.0), (float("inf"), 10.0)),
                               750_000.0, 10.0)
    result = price_histograms(b, T0, prompt, TokenUsage(750_000, 1_000, 0, 10))
    base_in = Decimal(750_000) * Decimal(50_000 * 9) / Decimal(50_000 * 9 + 350_000)
    long_in = Decimal(750_000) - round(base_in)
    expected = (round(base_in) * Decimal(3) + 900 * Decimal(15) + long_in * Decimal(6) + 100 * Decimal("22.5")) / 10**6
    assert result.price.total_usd == expected


def test_without_histograms_counters_are_priced_at_the_mean_request_tier() -> None:
    b = baseline("anthropic", "claude-sonnet-4-5")
    result = price_histograms(b, T0, None, TokenUsage(2_000, 500, 0, 2))
    assert result.method == "counters"
    assert result.price.total_usd == (2_000 * Decimal(3) + 500 * Decimal(15)) / 10**6
