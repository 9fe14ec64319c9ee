"""The whole sidecar, as a user runs it, on SQLite and on the real PostgreSQL: GPU telemetry from the
fake NVML library through the real pynvml path, engine telemetry from a replayed real vLLM capture
whose counters move, rows in the store, /metrics parsed back with prometheus_client's parser."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from agent.store.db import open_engine
from agent.store.schema import engine_samples, gpu_samples
from tests.engine.replay import ReplayServer
from tests.integration.sidecar import Sidecar
from tests.support.pages import GrowingPage, fixture_text


async def test_sidecar_collects_stores_and_exposes_gpus_and_engine(db_url: str) -> None:
    page = GrowingPage(fixture_text("vllm/datadog_vllm_metrics.txt"))
    replay = ReplayServer(page)
    url = await replay.start()
    sidecar = Sidecar(["--db", db_url, "--engine-url", url, "--engine-interval", "0.5", "--gpu-interval", "0.5",
                       "--host", "it-node-1"])
    await sidecar.start()
    try:
        await sidecar.wait_for('campwatch_engine_up{', 'campwatch_gpu_up{', timeout=60)
        text = await sidecar.wait_until(lambda w: w.get("gpu_samples", 0) >= 24 and w.get("engine_samples", 0) >= 4)
    finally:
        code = await sidecar.stop()
        await replay.stop()
    assert code == 0, sidecar.stderr
    families = {f.name: f for f in text_string_to_metric_families(text)}

    up = families["campwatch_gpu_up"].samples
    assert len(up) == 8 and all(s.value == 1 for s in up)
    assert {s.labels["host"] for s in up} == {"it-node-1"}
    assert all(s.labels["model"].startswith("NVIDIA H100") for s in up)
    util = [s.value for s in families["campwatch_gpu_utilization_ratio"].samples]
    assert len(util) == 8 and all(0 <= v <= 1 for v in util)
    assert all(s.value > 0 for s in families["campwatch_gpu_power_watts"].samples)

    engine_up = families["campwatch_engine_up"].samples
    assert [(s.labels["kind"], s.value) for s in engine_up] == [("vllm", 1.0)]
    prompt = families["campwatch_engine_prompt_tokens"].samples
    assert prompt and prompt[0].labels["model"] == "facebook/opt-125m" and prompt[0].value > 0
    kv = families["campwatch_engine_kv_cache_usage_ratio"].samples
    assert kv and 0 <= kv[0].value <= 1
    collectors = {s.labels["collector"]: s.value for s in families["campwatch_collector_up"].samples}
    assert collectors["gpu"] == 1 and collectors[f"engine:{url}"] == 1

    engine = open_engine(db_url)
    with engine.connect() as conn:
        gpu_rows = conn.execute(select(func.count(), func.count(func.distinct(gpu_samples.c.uuid)))
                                .where(gpu_samples.c.host == "it-node-1")).one()
        tokens = conn.execute(select(engine_samples.c.prompt_tokens_total)
                              .where(engine_samples.c.up.is_(True)).order_by(engine_samples.c.ts)).scalars().all()
    engine.dispose()
    assert gpu_rows[1] == 8 and gpu_rows[0] >= 16
    assert len(tokens) >= 3 and tokens[-1] > tokens[0]  # the replayed counters moved and were stored


async def test_missing_nvml_library_is_one_clear_message_and_the_engine_keeps_going(tmp_path: Path) -> None:
    page = GrowingPage(fixture_text("vllm/datadog_vllm_metrics.txt"))
    replay = ReplayServer(page)
    url = await replay.start()
    sidecar = Sidecar(["--db", f"sqlite:///{tmp_path / 'x.db'}", "--engine-url", url, "--engine-interval", "0.5"],
                      scenario=None)
    await sidecar.start()
    try:
        text = await sidecar.wait_for('campwatch_engine_up{', timeout=60)
    finally:
        code = await sidecar.stop()
        await replay.stop()
    assert code == 0
    assert 'campwatch_collector_up{collector="gpu",host="vm"} 0.0' in text
    assert "campwatch_gpu_up" not in text
    messages = [line for line in sidecar.stderr.splitlines() if "GPU telemetry is off" in line]
    assert len(messages) == 1 and "libnvidia-ml.so.1" in messages[0]
