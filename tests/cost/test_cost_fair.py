"""Fair comparison: the per-baseline token ratio and the API's price tiers (batch, flex, priority,
cache writes), hand-computed, through every comparison and the report's baseline table."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cost_helpers import T0, cost_settings, steady_host
from rich.console import Console
from sqlalchemy import Engine

from agent.cli import main
from agent.config import BaselineSettings, load_settings
from agent.cost.baselines import Baseline, TokenUsage, effective_rates, price_usages, resolve_baselines
from agent.cost.render import render_report
from agent.cost.report import build_report, report_to_json
from agent.errors import BaselineError, ConfigError, CostError
from agent.store.db import open_engine
from agent.store.migrate import upgrade

H = timedelta(hours=1)
MTOK_EACH = TokenUsage(1_000_000, 1_000_000)
AFTER_TIERS = datetime(2026, 11, 2, 10, tzinfo=UTC)
"""genai-prices 0.2.3 prices gpt-4o's batch tier from 2026-10-14 on."""


def baseline(provider: str = "openai", model: str = "gpt-4o", **kw: Any) -> Baseline:
    return resolve_baselines(cost_settings(baselines=(BaselineSettings(provider=provider, model=model, **kw),)))[0]


def test_a_token_ratio_of_1_3_multiplies_the_api_cost_by_exactly_1_3() -> None:
    plain = price_usages(baseline(), [(T0, MTOK_EACH)])
    ratio = price_usages(baseline(token_ratio=Decimal("1.3")), [(T0, MTOK_EACH)])
    assert plain.total_usd == Decimal("12.5")  # gpt-4o: $2.50 in + $10 out per million
    assert ratio.total_usd == Decimal("16.25")
    assert (ratio.input_usd, ratio.output_usd) == (Decimal("3.25"), Decimal("13.0"))


def test_the_token_ratio_moves_the_verdict_break_even_and_hybrid_by_hand(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine)
    plain = build_report(sqlite_engine, cost_settings(), 2 * H, "h1", now=T0 + 2 * H)
    fair = build_report(sqlite_engine, cost_settings(baselines=(
        BaselineSettings(provider="openai", model="gpt-4o", token_ratio=Decimal("1.3")),)), 2 * H, "h1",
        now=T0 + 2 * H)
    a1, a13 = plain.total.api[0], fair.total.api[0]
    assert a1.per_mtok is not None and a13.per_mtok is not None
    assert a13.per_mtok == a1.per_mtok * Decimal("1.3")
    assert a13.priced.total_usd == a1.priced.total_usd * Decimal("1.3")
    assert a13.priced_tokens == a1.priced_tokens  # the measured tokens are not recounted
    (v1,), (v13,) = plain.total.verdicts, fair.total.verdicts
    assert v1.api_usd_per_month is not None and v13.api_usd_per_month is not None
    assert float(v13.api_usd_per_month) == pytest.approx(1.3 * float(v1.api_usd_per_month), rel=1e-12)
    rate = fair.total.run_rate
    assert rate is not None
    # break-even = fixed x volume / (API - energy), the API side at 1.3x
    f, v, e = rate.fixed_usd_per_month, rate.tokens_per_month, rate.marginal_usd_per_month
    spread = Decimal("1.3") * v1.api_usd_per_month - e
    assert v13.breakeven_tokens_per_month is not None and v1.breakeven_tokens_per_month is not None
    assert float(v13.breakeven_tokens_per_month) == pytest.approx(float(f * v / spread), rel=1e-9)
    assert v13.breakeven_tokens_per_month < v1.breakeven_tokens_per_month
    (h1,), (h13,) = plain.hybrid, fair.hybrid
    assert h1.api_only is not None and h13.api_only is not None
    assert float(h13.api_only.usd_per_month) == pytest.approx(1.3 * float(h1.api_only.usd_per_month), rel=1e-12)
    data = json.loads(json.dumps(report_to_json(fair)))
    assert data["baselines"][0]["token_ratio"] == "1.3"
    assert float(data["hybrid"][0]["api_only"]["usd_per_month"]) == pytest.approx(float(h13.api_only.usd_per_month))


def test_a_declared_batch_tier_at_50_percent_halves_the_api_cost() -> None:
    standard = price_usages(baseline("deepseek", "deepseek-chat"), [(T0, MTOK_EACH)])
    batch = price_usages(baseline("deepseek", "deepseek-chat", tier="batch", tier_discount=Decimal("0.5")),
                         [(T0, MTOK_EACH)])
    assert standard.total_usd == Decimal("1.37")  # deepseek-chat peak: $0.27 in + $1.10 out
    assert batch.total_usd == Decimal("0.685")


def test_genai_prices_batch_prices_apply_where_it_has_them() -> None:
    b = baseline(tier="batch")
    assert price_usages(b, [(AFTER_TIERS, MTOK_EACH)]).total_usd == Decimal("6.25")  # $1.25 + $5 batch
    assert "genai-prices batch prices from 2026-10-14" in b.tier_pricing
    with pytest.raises(CostError, match=r"no batch price for it on 2026-03-02.*declare tier_discount"):
        price_usages(b, [(T0, MTOK_EACH)])
    declared = baseline(tier="batch", tier_discount=Decimal("0.4"))
    assert price_usages(declared, [(T0, MTOK_EACH)]).total_usd == Decimal("7.5")  # before: 12.5 x 0.6
    assert price_usages(declared, [(AFTER_TIERS, MTOK_EACH)]).total_usd == Decimal("6.25")


def test_priority_is_priced_dearer_from_genai_prices() -> None:
    b = baseline(tier="priority")
    assert price_usages(b, [(AFTER_TIERS, MTOK_EACH)]).total_usd == Decimal("21.25")  # $4.25 + $17


def test_an_undeclared_tier_is_one_clear_error_naming_the_baseline_and_the_key() -> None:
    settings = cost_settings(baselines=(BaselineSettings(provider="openai", model="gpt-4o"),
                                        BaselineSettings(provider="deepseek", model="deepseek-chat", tier="flex")))
    with pytest.raises(BaselineError) as err:
        resolve_baselines(settings)
    message = str(err.value)
    assert "cost.baselines[1] deepseek/deepseek-chat" in message
    assert "tier 'flex' is not priced" in message and "tier_discount" in message


def test_cache_writes_are_priced_at_the_cache_write_rate() -> None:
    usage = TokenUsage(100_000, 0, cache_read_tokens=20_000, cache_write_tokens=40_000)  # below the 200k tier
    sonnet = price_usages(baseline("anthropic", "claude-sonnet-4-5"), [(T0, usage)])
    # 40k uncached x $3 + 20k read x $0.30 + 40k written x $3.75 (per million)
    assert sonnet.input_usd == Decimal("0.12") + Decimal("0.006") + Decimal("0.15")
    # gpt-4o has no cache-write price: written tokens pay the input rate
    gpt = price_usages(baseline(), [(T0, usage)])
    assert gpt.input_usd == Decimal("0.08") * Decimal("2.5") + Decimal("0.02") * Decimal("1.25")


def test_a_declared_tier_keeps_the_time_of_day_price_names() -> None:
    b = baseline("deepseek", "deepseek-chat", tier="batch", tier_discount=Decimal("0.5"))
    off_peak = b.price_at(datetime(2026, 3, 2, 18, tzinfo=UTC))
    assert b.price_label(off_peak).startswith("off-peak")
    assert price_usages(b, [(datetime(2026, 3, 2, 18, tzinfo=UTC), MTOK_EACH)]).total_usd == Decimal("0.3425")


def test_dated_tier_discount_changes_apply_from_their_day() -> None:
    b = baseline("deepseek", "deepseek-chat", tier="batch", tier_discount=Decimal("0.5"),
                 tier_discount_changes=({"effective_from": "2026-03-03", "tier_discount": "0.25"},))
    assert price_usages(b, [(T0, MTOK_EACH)]).total_usd == Decimal("0.685")
    assert price_usages(b, [(T0 + 24 * H, MTOK_EACH)]).total_usd == Decimal("1.0275")


def test_a_price_file_baseline_takes_a_declared_tier(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[[prices]]\nprovider = "acme"\nmodel = "m1"\ninput_mtok = "2"\noutput_mtok = "6"\n'
                      'as_of = 2026-01-15\nsource = "acme price list"\n', encoding="utf-8")
    settings = cost_settings(price_file=str(prices), baselines=(BaselineSettings(
        provider="acme", model="m1", tier="flex", tier_discount=Decimal("0.5"), token_ratio=Decimal("2")),))
    (b,) = resolve_baselines(settings)
    assert price_usages(b, [(T0, MTOK_EACH)]).total_usd == Decimal("8")  # (2 + 6) x 0.5 x 2
    rates = effective_rates(b, T0)
    assert (rates.input_mtok, rates.output_mtok, rates.cache_read_mtok, rates.cache_write_mtok) == (
        Decimal("2"), Decimal("6"), Decimal("2"), Decimal("2"))


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("token_ratio", 0, "greater than 0"), ("token_ratio", -1.3, "greater than 0"),
    ("token_ratio", "inf", "finite"), ("token_ratio", "nan", "finite"), ("token_ratio", "x", "decimal"),
    ("tier", "cheap", "'standard', 'batch', 'flex' or 'priority'"), ("tier_discount", 1, "less than 1"),
])
def test_bad_fair_comparison_settings_name_the_key(tmp_path: Path, key: str, value: object, expected: str) -> None:
    config = tmp_path / "c.toml"
    tier = '' if key != "tier_discount" else 'tier = "batch"\n'
    config.write_text(f'[[cost.baselines]]\nprovider = "openai"\nmodel = "gpt-4o"\n{tier}{key} = {json.dumps(value)}\n',
                      encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(config, environ={})
    message = str(err.value)
    assert f"cost.baselines[0].{key}" in message and expected in message


def test_a_tier_discount_without_a_tier_is_refused() -> None:
    with pytest.raises(ValueError, match="tier_discount applies to a tier other than standard"):
        BaselineSettings(provider="openai", model="gpt-4o", tier_discount=Decimal("0.5"))


def test_the_baseline_table_shows_tier_ratio_and_effective_rates(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine)
    settings = cost_settings(baselines=(
        BaselineSettings(provider="anthropic", model="claude-sonnet-4-5", token_ratio=Decimal("1.3")),
        BaselineSettings(provider="deepseek", model="deepseek-chat", tier="batch", tier_discount=Decimal("0.5"),
                         discount=Decimal("0.1")),
        BaselineSettings(provider="openai", model="gpt-4o", tier="batch"),
    ))
    report = build_report(sqlite_engine, settings, 2 * H, "h1", now=T0 + 2 * H)
    sonnet, deepseek, gpt = report.baselines
    assert sonnet.effective is not None and deepseek.effective is not None
    # claude-sonnet-4-5 x 1.3: $3 / $15 / $0.30 / $3.75 per million
    assert (sonnet.effective.input_mtok, sonnet.effective.output_mtok, sonnet.effective.cache_read_mtok,
            sonnet.effective.cache_write_mtok) == (Decimal("3.9"), Decimal("19.5"), Decimal("0.39"), Decimal("4.875"))
    # deepseek-chat at 11:59 UTC (peak $0.27 in) x 0.5 batch x 0.9 negotiated
    assert deepseek.effective.input_mtok == Decimal("0.1215")
    assert gpt.effective is None and "no batch price for it on 2026-03-02" in gpt.rates_error
    data = json.loads(json.dumps(report_to_json(report)))
    assert data["baselines"][1]["tier"] == "batch"
    assert data["baselines"][0]["effective"]["cache_write_mtok"] == "4.875"
    console = Console(record=True, width=260)
    render_report(console, report)
    text = console.export_text()
    assert "API baselines: tier and effective $/Mtok at 2026-03-02 11:59 UTC" in text
    assert "$4.88" in text and "declared tier_discount 50%" in text


def test_campwatch_cost_hybrid_json_carries_hybrid_and_flips_per_baseline_with_the_ratio(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    engine = open_engine(url)
    upgrade(engine)
    steady_host(engine)
    engine.dispose()
    outputs = []
    for ratio in ("1", "1.3"):
        config = tmp_path / f"c{ratio}.toml"
        config.write_text('[[cost.baselines]]\nprovider = "openai"\nmodel = "gpt-4o"\n'
                          f'token_ratio = {ratio}\n', encoding="utf-8")
        result = CliRunner().invoke(main, ["cost", "--config", str(config), "--db", url, "--from", "2026-03-02",
                                           "--to", "2026-03-03", "--hybrid", "--json"], env={})
        assert result.exit_code == 0, result.output
        outputs.append(json.loads(result.output))
    plain, fair = outputs
    assert [b["token_ratio"] for b in fair["baselines"]] == ["1.3"]
    assert [h["baseline"] for h in fair["hybrid"]] == [f["baseline"] for f in fair["flips"]] == ["openai/gpt-4o"]
    assert float(fair["hybrid"][0]["api_only"]["usd_per_month"]) == pytest.approx(
        1.3 * float(plain["hybrid"][0]["api_only"]["usd_per_month"]), rel=1e-9)
    be_plain = float(plain["total"]["verdicts"][0]["breakeven_tokens_per_month"])
    be_fair = float(fair["total"]["verdicts"][0]["breakeven_tokens_per_month"])
    assert be_fair < be_plain
    assert fair["flips"][0]["reason"]  # two hours give no monthly trend: the flip says so
