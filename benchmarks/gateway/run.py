"""One gateway run: the fake upstream, then direct SDK calls, the service and the LiteLLM
proxy, each at every concurrency level against that same upstream, one target at a time."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.gateway import load, processes
from benchmarks.gateway.summary import checks, level_row
from benchmarks.gateway.upstream import MODEL


@dataclass(frozen=True)
class GatewayOptions:
    levels: tuple[int, ...] = (1, 10, 50, 200)
    requests: int = 1000
    upstream_latency_ms: float = 20.0
    litellm: bool = True


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown"
    return next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), "?")


def machine() -> dict[str, Any]:
    versions = {"python": platform.python_version()}
    for package in ("openai", "httpx2", "hypercorn", "quart", "uvloop"):
        versions[package] = importlib.metadata.version(package)
    return {
        "when": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


async def _levels(
    name: str,
    call: load.Call,
    options: GatewayOptions,
    bar: tqdm[Any],
    direct: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    bar.set_description(name)
    await load.warm_up(call)
    rows = []
    for concurrency in options.levels:
        result = await load.run_level(call, concurrency, options.requests, bar)
        base = (
            next((r for r in direct["levels"] if r["concurrency"] == concurrency), None)
            if direct
            else None
        )
        rows.append(level_row(result, base))
    return rows


async def run_gateway(options: GatewayOptions, workdir: Path) -> dict[str, Any]:
    """Measure every target; the report's `checks` say which of the issue's targets are met."""
    report: dict[str, Any] = {
        "machine": machine(),
        "levels": list(options.levels),
        "requests_per_level": options.requests,
        "upstream_latency_ms": options.upstream_latency_ms,
        "notes": [],
        "targets": {},
    }
    binary = None
    if options.litellm:
        binary, version = await asyncio.to_thread(processes.ensure_litellm)
        if binary is None:
            report["notes"].append(version)
        else:
            report["machine"]["versions"]["litellm"] = version
    else:
        report["notes"].append("LiteLLM skipped (--skip-litellm)")
    connections = max(options.levels)
    targets = 2 + (binary is not None)
    total = targets * len(options.levels) * options.requests
    upstream = await asyncio.to_thread(processes.start_upstream, options.upstream_latency_ms)
    try:
        with tqdm(total=total, unit="req", dynamic_ncols=True) as bar:
            async with load.sdk_client(upstream.url + "/v1", connections) as client:
                rows = await _levels("direct", load.sdk_call(client, MODEL), options, bar, None)
            direct = {"levels": rows, "rss_mb": None}
            report["targets"]["direct"] = direct
            settings = processes.openai_service_settings(upstream)
            service = await asyncio.to_thread(processes.start_service, settings)
            try:
                async with load.http_client(service.url, connections) as http:
                    rows = await _levels("service", load.service_call(http), options, bar, direct)
                report["targets"]["service"] = {"levels": rows, "rss_mb": service.rss_mb()}
            finally:
                service.stop()
            if binary is not None:
                report["targets"]["litellm"] = await _litellm(
                    binary, upstream, options, bar, direct, workdir
                )
    finally:
        upstream.stop()
    report["checks"] = checks(report)
    return report


async def _litellm(
    binary: Path,
    upstream: processes.Process,
    options: GatewayOptions,
    bar: tqdm[Any],
    direct: dict[str, Any],
    workdir: Path,
) -> dict[str, Any]:
    proxy = await asyncio.to_thread(processes.start_litellm, binary, upstream, workdir)
    try:
        async with load.sdk_client(
            proxy.url + "/v1", max(options.levels), processes.LITELLM_KEY
        ) as client:
            call = load.sdk_call(client, processes.LITELLM_MODEL)
            rows = await _levels("litellm", call, options, bar, direct)
        return {"levels": rows, "rss_mb": proxy.rss_mb()}
    finally:
        proxy.stop()
