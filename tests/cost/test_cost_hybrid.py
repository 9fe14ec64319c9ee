"""The hybrid optimum: hand-computed mixes, regulated traffic, properties, and the report/CLI view."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from sqlalchemy import Engine

from agent.cli import main
from agent.cost.hybrid import HybridCosts, gpus_for, hybrid_optimum
from agent.cost.render import render_report
from agent.cost.report import build_report, report_to_json
from agent.store.db import open_store
from tests.cost.cost_helpers import T0, cost_settings, steady_host

H = timedelta(hours=1)
CAP = 100 / 3600  # 100 tokens per GPU-hour: the hand cases count in hundreds


def costs(gpu: str = "150", overhead: str = "0", energy: str = "0", today: str | None = "600") -> HybridCosts:
    return HybridCosts(Decimal(gpu), Decimal(overhead), Decimal(energy), None if today is None else Decimal(today))


def test_the_cheapest_mix_of_a_peaky_demand_by_hand() -> None:
    # Hours ask 300, 200, 100, 100 tokens; a GPU serves 100 an hour and costs $150 a "month" of these
    # 4 hours; the API charges $1 a token. GPU 1 saves 400 tokens of API, GPU 2 saves 200, GPU 3 saves 100:
    # k=0 $700, k=1 $150+$300=$450, k=2 $300+$100=$400, k=3 $450+$0=$450. The best is 2 GPUs, 100 of the
    # 700 tokens on the API, $200 less than today's $600.
    result = hybrid_optimum("api", [300, 200, 100, 100], CAP, Decimal(1), costs(), month_hours=4)
    assert result.api_only is not None and result.api_only.usd_per_month == Decimal(700)
    assert (result.self_only.gpus, result.self_only.usd_per_month) == (3, Decimal(450))
    assert (result.best.kind, result.best.gpus, result.best.usd_per_month) == ("hybrid", 2, Decimal(400))
    assert result.best.api_tokens_per_month == pytest.approx(100)
    assert result.best.api_share == pytest.approx(1 / 7)
    assert result.saving_usd_per_month == Decimal(200)
    assert "2 GPU(s) for the base load with 14% of the tokens on the API" in result.reasons[0]


def test_energy_per_token_and_overhead_move_the_optimum_by_hand() -> None:
    # Same demand, energy $0.5 a self-hosted token, overhead $50 once any GPU is held:
    # k=1: 150+50+0.5*400+300 = 700; k=2: 300+50+0.5*600+100 = 750; k=3: 450+50+350 = 850; k=0: 700.
    # A tie between k=0 and k=1 goes to fewer GPUs.
    result = hybrid_optimum("api", [300, 200, 100, 100], CAP, Decimal(1), costs(overhead="50", energy="0.5"),
                            month_hours=4)
    assert result.self_only.usd_per_month == Decimal(850)
    assert (result.best.gpus, result.best.usd_per_month) == (0, Decimal(700))
    assert result.best.api_share == 1.0


def test_the_month_scale_multiplies_the_period_to_730_hours() -> None:
    result = hybrid_optimum("api", [300, 200, 100, 100], CAP, Decimal(1), costs(today=None))
    # 730 / 4 = 182.5 periods a month: the GPUs cost the same per month, the tokens 182.5 times more.
    assert result.api_only is not None and result.api_only.usd_per_month == Decimal(700) * Decimal("182.5")
    assert result.self_only.gpus == 3
    assert result.best.gpus == 3 and result.best.usd_per_month == Decimal(450)
    assert result.saving_usd_per_month is None


def test_regulated_traffic_never_goes_to_the_api() -> None:
    demand = [300.0, 200.0, 100.0, 100.0]
    result = hybrid_optimum("api", demand, CAP, Decimal(1), costs(), regulated=demand, month_hours=4)
    assert result.api_only is None
    assert result.best.api_tokens_per_month == 0 and result.best.gpus == 3
    # Only the first hour's 250 regulated tokens force 3 GPUs; the rest may overflow.
    part = hybrid_optimum("api", demand, CAP, Decimal(1), costs(), regulated=[250, 0, 0, 0], month_hours=4)
    assert part.best.gpus == 3
    assert any("Regulated traffic stays self-hosted" in r for r in part.reasons)


def test_an_api_cheaper_than_the_energy_keeps_only_regulated_tokens_home() -> None:
    # p = $0.1 < m = $0.5: every unregulated token is cheaper on the API even with GPUs held.
    result = hybrid_optimum("api", [100, 100], CAP, Decimal("0.1"), costs(energy="0.5"), regulated=[50, 50],
                            month_hours=2)
    assert result.best.gpus == 1
    assert result.best.self_tokens_per_month == pytest.approx(100)
    assert result.best.usd_per_month == Decimal(150) + Decimal("0.5") * 100 + Decimal("0.1") * 100


def test_gpus_for_counts_an_exact_multiple_without_an_extra_gpu() -> None:
    assert gpus_for(400, CAP) == 4
    assert gpus_for(401, CAP) == 5
    assert gpus_for(0, CAP) == 0


@pytest.mark.parametrize(("capacity", "demand", "regulated", "message"), [
    (0.0, [1.0], None, "capacity_tokens_per_s_per_gpu"),
    (1.0, [-1.0], None, "demand"),
    (1.0, [1.0, 2.0], [1.0], "regulated"),
    (1.0, [1.0], [2.0], "regulated"),
])
def test_bad_inputs_name_the_input(capacity: float, demand: list[float], regulated: list[float] | None,
                                   message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hybrid_optimum("api", demand, capacity, Decimal(1), costs(), regulated=regulated)


demands = st.lists(st.floats(0, 5000, allow_nan=False), min_size=1, max_size=48)
money = st.decimals(Decimal("0"), Decimal("500"), places=2)
price = st.decimals(Decimal("0.001"), Decimal("2"), places=3)


@settings(max_examples=150, deadline=None)
@given(demand=demands, cap=st.floats(0.005, 2.0), gpu=money, overhead=money, energy=price, p=price,
       regulated_share=st.sampled_from([0.0, 0.3, 1.0]))
def test_the_hybrid_never_costs_more_than_either_pure_option(demand: list[float], cap: float, gpu: Decimal,
                                                            overhead: Decimal, energy: Decimal, p: Decimal,
                                                            regulated_share: float) -> None:
    c = HybridCosts(gpu, overhead, energy / 10, None)
    result = hybrid_optimum("api", demand, cap, p, c, regulated=[d * regulated_share for d in demand])
    assert result.best.usd_per_month <= result.self_only.usd_per_month
    if result.api_only is not None:
        assert result.best.usd_per_month <= result.api_only.usd_per_month
    else:
        assert regulated_share > 0 and sum(demand) > 0


@settings(max_examples=150, deadline=None)
@given(demand=demands, cap=st.floats(0.005, 2.0), more=st.floats(1.0, 10.0), gpu=money, overhead=money,
       energy=price, p=price, regulated_share=st.sampled_from([0.0, 0.5]))
def test_more_capacity_never_raises_the_hybrid_cost(demand: list[float], cap: float, more: float, gpu: Decimal,
                                                   overhead: Decimal, energy: Decimal, p: Decimal,
                                                   regulated_share: float) -> None:
    c = HybridCosts(gpu, overhead, energy / 10, None)
    regulated = [d * regulated_share for d in demand]
    low = hybrid_optimum("api", demand, cap, p, c, regulated=regulated)
    high = hybrid_optimum("api", demand, cap * more, p, c, regulated=regulated)
    assert high.best.usd_per_month <= low.best.usd_per_month + Decimal("1e-6")


def test_the_report_gives_the_mix_per_baseline_on_the_utilization_basis(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine)  # 2 h, 1 GPU at $3.60/h busy half the time, 448,750 + 450,000 tokens
    settings_ = cost_settings(overhead_usd_per_month=Decimal("730"))
    report = build_report(sqlite_engine, settings_, timedelta(hours=2), "h1", now=T0 + 2 * H)
    (mix,) = report.hybrid
    assert mix.capacity_basis == "utilization"
    assert mix.capacity_tokens_per_s_per_gpu == pytest.approx(898_750 / 3600)  # tokens / busy GPU-seconds
    assert mix.self_only.gpus == 1
    assert mix.self_only.usd_per_month == Decimal("3358")  # $3.60 x 730 + $730 overhead: today's setup
    api = report.total.verdicts[0].api_usd_per_month
    assert api is not None and mix.api_only is not None
    assert mix.api_only.usd_per_month == pytest.approx(api)
    assert mix.best.usd_per_month == min(mix.api_only.usd_per_month, Decimal("3358"))
    assert mix.saving_usd_per_month == Decimal("3358") - mix.best.usd_per_month
    assert "linear scale of NVML utilization" in report.hybrid_notes[0]
    data = json.loads(json.dumps(report_to_json(report)))
    assert data["hybrid"][0]["self_only"]["gpus"] == 1
    assert data["hybrid"][0]["best"]["api_share"] == mix.best.api_share
    console = Console(record=True, width=220)
    render_report(console, report, hybrid=True)
    text = console.export_text()
    assert "Hybrid (h1)" in text and "$3,358.00" in text


def test_regulated_data_in_the_settings_keeps_the_report_mix_off_the_api(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine)
    report = build_report(sqlite_engine, cost_settings(regulated_data=True), timedelta(hours=2), "h1",
                          now=T0 + 2 * H)
    (mix,) = report.hybrid
    assert mix.api_only is None
    assert mix.best.api_tokens_per_month == 0 and mix.best.gpus == 1


def test_too_little_data_gives_no_mix_but_says_why(sqlite_engine: Engine) -> None:
    steady_host(sqlite_engine, end_s=600)
    report = build_report(sqlite_engine, cost_settings(), timedelta(hours=2), "h1", now=T0 + 2 * H)
    assert report.hybrid == ()
    assert "insufficient data" in report.hybrid_notes[0]


def test_campwatch_cost_hybrid_prints_the_mix_and_the_json_carries_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    engine = open_store(url, upgrade=True)
    steady_host(engine)
    engine.dispose()
    window = ["cost", "--db", url, "--from", "2026-03-02", "--to", "2026-03-03"]
    table = CliRunner().invoke(main, [*window, "--hybrid"], env={"COLUMNS": "220"})
    assert table.exit_code == 0, table.output
    assert "Hybrid (h1)" in table.output and "self-host only" in table.output
    plain = CliRunner().invoke(main, window, env={"COLUMNS": "220"})
    assert "Hybrid (h1)" not in plain.output
    data = json.loads(CliRunner().invoke(main, [*window, "--json"]).output)
    assert data["hybrid"][0]["self_only"]["gpus"] == 1
    assert data["hybrid"][0]["capacity_basis"] == "utilization"
