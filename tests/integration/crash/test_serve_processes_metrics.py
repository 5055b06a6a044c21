"""`serve` with SERVE_WORKERS=2: `/metrics` from either process is the service's, every
process's counters summed, and a queue gauge read from the shared store not multiplied by the
number of processes."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import ProcessPool, ServiceProcess, poll_until

pytestmark = pytest.mark.timeout(240)

REQUESTS = 20
QUEUED = {
    "user_prompt": "Which essay argues better?",
    "essay_a": "Cats are independent.",
    "essay_b": "Dogs are loyal.",
    "processing_mode": "async",  # queued; with no worker it stays queued
}
COMPARISON = "/api/v1/comparison"
_FILES = re.compile(r'serve: 2 processes on .*; metrics in (?P<path>[^\s"]+)')
SCRAPES = 10  # at least, and until each process answered one


async def test_every_scrape_of_two_serve_processes_reports_the_whole_service(
    processes: ProcessPool,
) -> None:
    serve = processes.start(
        "serve", "serve", serve_workers=2, log_format="json", worker_enabled=False
    )
    files = (await serve.wait_for_log(_FILES.pattern, 90))["path"]
    assert _is_dir(files)  # created before the processes start
    await serve.wait_ready(within=120)
    await poll_until(lambda: len(_started(serve)) == 2, within=60, what="both processes serving")

    # A fresh connection per request, so the kernel hands them to either process.
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=30, limits=fresh) as client:
        for _ in range(REQUESTS):
            response = await client.post(COMPARISON, json=QUEUED)
            assert response.status_code == 202, response.text

        scrapes: list[dict[str, float]] = []

        async def both_processes_scraped() -> bool:
            response = await client.get("/metrics")
            assert response.status_code == 200, response.text
            scrapes.append(_values(response.text))
            return len(scrapes) >= SCRAPES and _answered(serve, "/metrics") == _started(serve)

        await poll_until(both_processes_scraped, within=60, what="a scrape of each process")

    # Without this the test proves nothing: a process that served no request reports none.
    assert _answered(serve, COMPARISON) == _started(serve), "one process took every request"
    print(f"\nserve x2: {len(scrapes)} scrapes: {scrapes}")
    for values in scrapes:
        assert values["requests"] == REQUESTS, values  # all processes' requests, summed
        assert values["queue_depth"] == REQUESTS, values  # the shared queue's, not x2

    serve.signal(signal.SIGTERM)
    assert await serve.exited(within=60) == 0, serve.text()[-3000:]
    assert not _is_dir(files)  # and removed by the parent when they ended


def _values(text: str) -> dict[str, float]:
    """The comparison requests counted and the queue depth, in one scrape."""
    requests = depth = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "llm_provider_http_requests_total"
                and sample.labels.get("route") == COMPARISON
            ):
                requests += sample.value
            elif sample.name == "llm_provider_queue_depth":
                depth += sample.value
    return {"requests": requests, "queue_depth": depth}


def _lines(process: ServiceProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in process.text().splitlines() if line.startswith("{")]


def _started(process: ServiceProcess) -> set[int]:
    """The pids of the serve processes that started serving."""
    return {line["pid"] for line in _lines(process) if line["event"].startswith("serving on ")}


def _answered(process: ServiceProcess, path: str) -> set[int]:
    """The pids of the processes that answered a request for `path`."""
    return {
        line["pid"]
        for line in _lines(process)
        if line.get("logger") == "llm_provider_service.access" and line.get("path") == path
    }


def _is_dir(path: str) -> bool:
    return Path(path).is_dir()
