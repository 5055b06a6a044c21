"""The cost of judgements realtime and through the batch lane, measured end to end.

The service runs in process (the app with its container and lifecycle: worker and batch
engine) with the Anthropic and OpenAI adapters pointed at the tests' fake upstream, the
same fake the integration tests use (the realtime and Batch APIs of both on one loopback
port), run as a process of its own (`batch_upstream.py` says why). For each vendor, N
comparisons are sent `processing_mode: "immediate"` and N `processing_mode: "batch"`; the
fake's batches are ended as soon as they are submitted. Every judgement's `cost_estimate`
(the service's price: token usage x the price table x the lane's factor) is summed per lane
and cross-checked against the service's own `llm_provider_batch_*` metrics.

    pdm run bench-batch                      # 1,000 per lane and vendor; to benchmarks/results/
    pdm run bench-batch --comparisons 100    # quicker
    pdm run bench-batch --write-docs         # documentation/benchmarks-batch.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from quart.typing import TestClientProtocol as Client

from benchmarks.batch_cost_report import (
    BatchCostReport,
    Lane,
    VendorRun,
    metric_sums,
    render,
    table,
)
from benchmarks.batch_upstream import FakeVendorProcess
from services.llm_provider_service.app import create_app
from services.llm_provider_service.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "documentation"
COMPARISON = "/api/v1/comparison"
MODELS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4.1-mini"}
CONCURRENCY = 16
SWEEP_SECONDS = 0.05


def parser() -> argparse.ArgumentParser:
    found = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    found.add_argument("--comparisons", type=int, default=1000, help="per lane and vendor")
    found.add_argument("--vendors", default=",".join(MODELS), help="of: anthropic, openai")
    found.add_argument("--max-wait-seconds", type=float, default=1.0, help="BATCH_MAX_WAIT_SECONDS")
    found.add_argument("--poll-seconds", type=float, default=0.2, help="BATCH_POLL_SECONDS")
    found.add_argument("--max-items", type=int, default=5000, help="BATCH_MAX_ITEMS")
    found.add_argument("--write-docs", action="store_true", help="write documentation/")
    found.add_argument("--out", type=Path, default=RESULTS, help="without --write-docs")
    return found


def settings_for(fake: FakeVendorProcess, arguments: argparse.Namespace) -> Settings:
    return load_settings(
        environment="testing",
        log_level="WARNING",
        default_llm_provider="anthropic",
        anthropic_api_key="bench-key",
        anthropic_base_url=fake.base_urls["anthropic"],
        anthropic_default_model=MODELS["anthropic"],
        openai_api_key="bench-key",
        openai_base_url=fake.base_urls["openai"],
        openai_default_model=MODELS["openai"],
        queue_poll_interval_seconds=0.05,
        batch_max_wait_seconds=arguments.max_wait_seconds,
        batch_poll_seconds=arguments.poll_seconds,
        batch_max_items=arguments.max_items,
    )


def body(vendor: str, lane: str, index: int) -> dict[str, Any]:
    """A distinct comparison (no two requests are the same judgement)."""
    return {
        "user_prompt": "Which essay argues its thesis better? {essay_a} versus {essay_b}",
        "essay_a": f"Essay {index}: a careful argument with evidence. " * 20,
        "essay_b": f"Essay {index}: a lively story without evidence. " * 20,
        "processing_mode": "immediate" if lane == "realtime" else "batch",
        "llm_config_overrides": {"provider_override": vendor},
        "metadata": {"bench": "batch_cost", "vendor": vendor, "lane": lane, "pair": index},
    }


async def realtime_lane(client: Client, vendor: str, count: int) -> Lane:
    results: list[dict[str, Any]] = []
    statuses: dict[int, int] = {}
    remaining = iter(range(count))

    async def user() -> None:
        for index in remaining:
            response = await client.post(COMPARISON, json=body(vendor, "realtime", index))
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 200:
                results.append(await response.get_json())

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(CONCURRENCY)))
    return Lane.of("realtime", count, results, statuses, time.perf_counter() - started)


async def batch_lane(client: Client, vendor: str, count: int, within: float) -> Lane:
    """Posts `count` batch requests (16 clients, as the realtime lane), then sweeps their
    status until every one has ended."""
    statuses: dict[int, int] = {}
    pending: list[str] = []
    remaining = iter(range(count))

    async def user() -> None:
        for index in remaining:
            response = await client.post(COMPARISON, json=body(vendor, "batch", index))
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 202:
                pending.append((await response.get_json())["status_url"])

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(CONCURRENCY)))
    results: list[dict[str, Any]] = []
    ended: dict[str, int] = {}
    deadline = time.monotonic() + within
    while pending and time.monotonic() < deadline:
        still: list[str] = []
        for url in pending:
            status = await (await client.get(url)).get_json()
            if status["status"] == "completed":
                results.append(status["result"])
            elif status["status"] in ("failed", "cancelled", "expired"):
                ended[status["status"]] = ended.get(status["status"], 0) + 1
            else:
                still.append(url)
        pending = still
        if pending:
            await asyncio.sleep(SWEEP_SECONDS)
    seconds = time.perf_counter() - started
    lane = Lane.of("batch", count, results, statuses, seconds)
    lane.unfinished = len(pending) + sum(ended.values())
    return lane


async def measure(arguments: argparse.Namespace) -> BatchCostReport:
    """Both lanes of each vendor against one fake upstream and one app."""
    count, vendors = arguments.comparisons, arguments.vendors.split(",")
    lanes: dict[str, tuple[Lane, Lane]] = {}
    with FakeVendorProcess() as fake:
        settings = settings_for(fake, arguments)
        app = create_app(settings)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            for vendor in vendors:
                realtime = await realtime_lane(client, vendor, count)
                batch = await batch_lane(client, vendor, count, within=120 + count * 0.2)
                lanes[vendor] = (realtime, batch)
            page = await (await client.get("/metrics")).get_data(as_text=True)
    runs = []
    for vendor, (realtime, batch) in lanes.items():
        batch.batches = sorted(fake.batches.get(vendor, {}).values(), reverse=True)
        metrics = metric_sums(page, vendor)
        runs.append(VendorRun(vendor, MODELS[vendor], realtime, batch, metrics))
    return BatchCostReport.of(settings, runs)


def main(arguments: argparse.Namespace) -> dict[str, Any]:
    """Runs the benchmark; returns the report (as JSON data) and where its page went."""
    report = asyncio.run(measure(arguments))
    print(table(report), flush=True)
    target = DOCS if arguments.write_docs else arguments.out
    target.mkdir(parents=True, exist_ok=True)
    page = target / "benchmarks-batch.md"
    page.write_text(render(report, arguments))
    found = report.as_json()
    if not arguments.write_docs:
        (target / "batch_cost.json").write_text(json.dumps(found, indent=2))
    print(f"report written to {page}")
    return {**found, "page": page}


if __name__ == "__main__":
    main(parser().parse_args())
