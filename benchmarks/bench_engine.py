"""Engine collector CPU per scrape, against prometheus_client's bare parse of the same pages.

Builds current vLLM (V1) pages with the vLLM page simulator (agent/sim/vllm_metrics.py): ~550 series
(two models x one engine core) and ~1100 series (two models x two engine cores). For each page size
it pre-renders a run of successive pages (counters and histograms growing), warms the SLI history to
a full 5 m window, then times, interleaved in rounds on the same pages:

  bare     prometheus_client.parser.text_string_to_metric_families, every sample consumed
  all      campwatch's parse_page with skip_unused=False (every family goes through the parser)
  parse    campwatch's parse_page (families of concepts it does not use are cut out before parsing)
  digest   parse + map + derive (1m and 5m windows) + rows and points: the collector's whole
           per-scrape CPU path (EngineCollector._digest), without the HTTP fetch

alternating page by page, and prints per-scrape times and digest/bare. Target: digest/bare <= 1.3.
The "0.32" cases add vLLM 0.32's newer families (MFU estimates, admission rejections, cache tiers,
preemptions per request), the API server's HTTP families and the client library's process/GC
families with every `_created` companion, as a real 0.32 page serves them.
Run: .venv/bin/python -m benchmarks.bench_engine [--rounds 7] [--pages 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from agent.collectors.engine.collector import EngineCollector
from agent.collectors.engine.parse import parse_page
from agent.collectors.engine.windows import parse_windows
from agent.sim.vllm_metrics import FinishedRequest, VllmMetrics
from tests.support.pages import GrowingPage, fixture_text

ROOT = Path(__file__).resolve().parent.parent

INTERVAL = 5.0
WARM_SCRAPES = 62  # a full 5 m window at 5 s


def _pages(models: tuple[str, ...], engines: tuple[str, ...], count: int, v032: bool = False) -> list[str]:
    server = VllmMetrics(models, engines, v032=v032)
    pages = []
    for step in range(count):
        for model in models:
            for engine in engines:
                server.record(FinishedRequest(model, ttft_seconds=0.1 + 0.05 * (step % 7), e2e_seconds=1.0 + step % 5,
                                              generation_tokens=20, finish_reason="stop" if step % 9 else "length",
                                              itl_seconds=0.03), engine=engine)
                server.set_load(model, running=step % 13, waiting=step % 3, kv_cache_usage=(step % 10) / 10,
                                engine=engine)
        pages.append(server.render())
    return pages


def _real_pages(count: int) -> list[str]:
    """The real vLLM 0.32 capture (one model, one engine core), its counters and histograms growing."""
    page = GrowingPage(fixture_text("vllm/vllm-0.32-after-load.txt"))
    out = []
    for _ in range(count):
        page.advance()
        out.append(page.render())
    return out


def _series(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def _bare(text: str) -> None:
    for family in text_string_to_metric_families(text):
        for _ in family.samples:
            pass


def _parse_everything(text: str) -> object:
    return parse_page(text, skip_unused=False)


def _interleaved(fns: dict[str, Callable[[str], object]], pages: list[str]) -> dict[str, float]:
    """Mean seconds per page for each function, alternating functions page by page so that load
    from other processes on the machine falls on all of them alike."""
    totals = dict.fromkeys(fns, 0.0)
    for page in pages:
        for name, fn in fns.items():
            started = time.perf_counter()
            fn(page)
            totals[name] += time.perf_counter() - started
    return {name: total / len(pages) for name, total in totals.items()}


def bench(label: str, models: tuple[str, ...], engines: tuple[str, ...], rounds: int, count: int,
          v032: bool = False, real: bool = False) -> float:
    total = WARM_SCRAPES + rounds * count
    pages = _real_pages(total) if real else _pages(models, engines, total, v032)
    warm, timed = pages[:WARM_SCRAPES], pages[WARM_SCRAPES:]
    clock_now = [0.0]
    collector = EngineCollector("http://127.0.0.1:8000/metrics", host="bench", interval_s=INTERVAL,
                                timeout_s=4.0, windows=parse_windows(("1m", "5m"), INTERVAL),
                                clock=lambda: clock_now[0])
    ts = datetime.now(UTC)

    def digest(text: str) -> object:
        clock_now[0] += INTERVAL
        return collector._digest(text, clock_now[0], ts)

    for page in warm:
        digest(page)
    fns: dict[str, Callable[[str], object]] = {
        "bare": _bare, "all": _parse_everything, "parse": parse_page, "digest": digest}
    rounds_out = [_interleaved(fns, timed[r * count:(r + 1) * count]) for r in range(rounds)]
    med = {name: statistics.median(r[name] for r in rounds_out) for name in fns}
    ratio = statistics.median(r["digest"] / r["bare"] for r in rounds_out)
    bare = med["bare"]
    points = len(collector._digest(timed[-1], clock_now[0] + INTERVAL, ts).points)
    print(f"{label}: {_series(timed[-1])} series, {len(timed[-1]) // 1024} KiB, {points} points out")
    print(f"  bare prometheus_client parse          {bare * 1e3:7.2f} ms/scrape")
    print(f"  parse_page, every family parsed       {med['all'] * 1e3:7.2f} ms/scrape   "
          f"({med['all'] / bare:.2f}x bare)")
    print(f"  parse_page (unused families skipped)  {med['parse'] * 1e3:7.2f} ms/scrape   "
          f"({med['parse'] / bare:.2f}x bare)")
    print(f"  parse + map + derive + rows/points    {med['digest'] * 1e3:7.2f} ms/scrape   "
          f"({ratio:.2f}x bare, median of per-round ratios)")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pages", type=int, default=30, help="pages per round")
    args = parser.parse_args()
    models = ("meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct")
    ratios = [
        bench("2 models x 1 engine", models, ("0",), args.rounds, args.pages),
        bench("2 models x 2 engines", models, ("0", "1"), args.rounds, args.pages),
        bench("0.32, 2 models x 1 engine", models, ("0",), args.rounds, args.pages, v032=True),
        bench("0.32, 2 models x 2 engines", models, ("0", "1"), args.rounds, args.pages, v032=True),
        bench("real vLLM 0.32 capture, 1 model x 1 engine", models, ("0",), args.rounds, args.pages, real=True),
    ]
    verdict = "within" if max(ratios) <= 1.3 else "OVER"
    print(f"target parse+derive <= 1.3x bare: {verdict} (worst {max(ratios):.2f}x)")


if __name__ == "__main__":
    main()
