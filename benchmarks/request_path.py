"""Benchmark of the service's own cost on the request path, over real HTTP.

Starts `python -m services.llm_provider_service serve` on a free port with a zero-latency mock
provider, so that everything measured is the service: parsing, validation, orchestration,
breaker, events, metrics, JSON. Reports client-side latency percentiles and throughput for
sequential and concurrent load, and the service's own overhead histogram
(`llm_provider_service_overhead_seconds`, request time minus the provider call), and writes
`documentation/benchmarks.md`.

    pdm run bench                      # defaults: 2,000 requests per scenario
    pdm run bench --requests 500       # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "documentation" / "benchmarks.md"
BODY: dict[str, object] = {
    "user_prompt": "Which essay argues its thesis better? {essay_a} versus {essay_b}",
    "essay_a": "A careful argument with evidence. " * 40,
    "essay_b": "A lively story without evidence. " * 40,
    "metadata": {"batch": "bench", "pair": [1, 2]},
}


@dataclass
class Scenario:
    name: str
    concurrency: int
    body: dict[str, object]


@dataclass
class Outcome:
    scenario: Scenario
    latencies_ms: list[float]
    seconds: float
    statuses: dict[int, int]

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_service(port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_PROVIDER_SERVICE_")}
    env.update(
        {
            "ENVIRONMENT": "testing",
            "LLM_PROVIDER_SERVICE_PORT": str(port),
            "LLM_PROVIDER_SERVICE_MOCK_LATENCY_MS": "0",
            "LLM_PROVIDER_SERVICE_MOCK_LATENCY_JITTER_MS": "0",
            "LLM_PROVIDER_SERVICE_LOG_LEVEL": "WARNING",
        }
    )
    command = [sys.executable, "-m", "services.llm_provider_service", "serve"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


async def _wait_healthy(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    raise RuntimeError("the service did not start")


async def _run(client: httpx.AsyncClient, scenario: Scenario, requests: int) -> Outcome:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = iter(range(requests))

    async def user() -> None:
        for _ in remaining:
            started = time.perf_counter()
            response = await client.post("/api/v1/comparison", json=scenario.body)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(scenario.concurrency)))
    return Outcome(scenario, latencies, time.perf_counter() - started, statuses)


async def _overhead(client: httpx.AsyncClient) -> tuple[float, float]:
    """Mean service overhead (ms) on the comparison route, and the share under 5 ms."""
    text = (await client.get("/metrics")).text
    route = 'route="/api/v1/comparison"'
    total = count = under_5ms = 0.0
    for line in text.splitlines():
        if route not in line:
            continue
        name, value = line.rsplit(" ", 1)
        if name.startswith("llm_provider_service_overhead_seconds_sum"):
            total = float(value)
        elif name.startswith("llm_provider_service_overhead_seconds_count"):
            count = float(value)
        elif (
            name.startswith("llm_provider_service_overhead_seconds_bucket") and 'le="0.005"' in name
        ):
            under_5ms = float(value)
    return (total / count * 1000 if count else float("nan"), under_5ms / count if count else 0.0)


def _report(outcomes: list[Outcome], overhead: tuple[float, float], requests: int) -> str:
    rows = [
        "| scenario | concurrency | requests/s | p50 ms | p95 ms | p99 ms | max ms | statuses |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        rows.append(
            f"| {o.scenario.name} | {o.scenario.concurrency} "
            f"| {len(o.latencies_ms) / o.seconds:,.0f} | {o.percentile(50):.2f} "
            f"| {o.percentile(95):.2f} | {o.percentile(99):.2f} | {max(o.latencies_ms):.2f} "
            f"| {', '.join(f'{k} x{v}' for k, v in sorted(o.statuses.items()))} |"
        )
    mean_overhead, share = overhead
    return "\n".join(
        [
            "# Benchmarks: the request path",
            "",
            "Written by `pdm run bench` (benchmarks/request_path.py); do not edit by hand.",
            "",
            f"- when: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, {platform.machine()}",
            f"- {requests} requests per scenario, real HTTP to `serve` (Hypercorn, one process),",
            "  mock provider with zero latency, so every millisecond below is the service's own",
            "  cost plus the client's (the client runs on the same cores). In the async scenario",
            "  the in-process worker drains the queued requests while they arrive.",
            "",
            *rows,
            "",
            f"Service overhead measured inside the service (request time minus the provider "
            f"call, `llm_provider_service_overhead_seconds`) over all scenarios: mean "
            f"**{mean_overhead:.2f} ms**; {share:.1%} of requests under 5 ms.",
            "",
            "Target: the service's own cost stays at a few milliseconds per request.",
            "",
            "The service beside direct SDK calls and the LiteLLM proxy, against a fake upstream "
            "with a real latency, and CJ sessions through an outage: "
            "[performance.md](performance.md) (`pdm run bench-performance`).",
            "",
        ]
    )


async def main(requests: int) -> None:
    port = _free_port()
    process = _start_service(port)
    scenarios = [
        Scenario("immediate, sequential", 1, {**BODY, "processing_mode": "immediate"}),
        Scenario("queue_if_unavailable, 16 concurrent", 16, BODY),
        Scenario(
            "async (202, in-memory queue), 16 concurrent", 16, {**BODY, "processing_mode": "async"}
        ),
    ]
    try:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits
        ) as client:
            await _wait_healthy(client)
            await _run(client, scenarios[0], 200)  # warm-up
            outcomes = []
            for scenario in scenarios:
                outcome = await _run(client, scenario, requests)
                outcomes.append(outcome)
                print(
                    f"{scenario.name:48} {len(outcome.latencies_ms) / outcome.seconds:8,.0f} req/s"
                    f"  p50 {outcome.percentile(50):6.2f} ms  p99 {outcome.percentile(99):6.2f} ms",
                    flush=True,
                )
            overhead = await _overhead(client)
    finally:
        process.terminate()
        process.wait(timeout=30)
    REPORT.write_text(_report(outcomes, overhead, requests))
    print(f"service overhead mean {overhead[0]:.2f} ms; report written to {REPORT}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args().requests))
