"""`serve` with SERVE_WORKERS=2 on the shared Redis queue: a provider outage queues requests
(202), and after it every one completes exactly once, its status is answered by either
process, and a SIGTERM to the parent stops both children gracefully."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_vendors.server import (
    FakeUpstream,
    clean_fake_upstream,  # noqa: F401
    fake_upstream,  # noqa: F401
)
from tests.support.processes import ProcessPool, ServiceProcess, count_by_request, poll_until

pytestmark = pytest.mark.timeout(240)

REQUESTS = 30
COMPARISON = {
    "user_prompt": "Which essay argues better?",
    "essay_a": "Cats are independent.",
    "essay_b": "Dogs are loyal.",
    "llm_config_overrides": {"provider_override": "openai"},
}
_CHILDREN = re.compile(r"serve: 2 processes on \S+, pids (?P<pids>\d+, \d+)")


async def test_two_serve_processes_drain_an_outage_exactly_once_and_stop_together(
    processes: ProcessPool,
    clean_fake_upstream: FakeUpstream,  # noqa: F811
) -> None:
    fake = clean_fake_upstream
    fake.fail("openai", "unavailable")  # the outage: every call is a 503
    processes.environment["OPENAI_API_KEY"] = "test-key"
    serve = processes.start(
        "serve",
        "serve",
        serve_workers=2,
        log_format="json",
        default_llm_provider="openai",
        openai_base_url=fake.openai_base_url,
        circuit_breaker_failure_threshold=3,
        circuit_breaker_reset_timeout_seconds=1,
        queue_max_attempts=100,  # the outage must not fail any request for good
        queue_retry_base_seconds=0.2,
        queue_retry_max_seconds=0.5,
        queue_poll_interval_seconds=0.1,
    )
    children = [
        int(p) for p in (await serve.wait_for_log(_CHILDREN.pattern, 90))["pids"].split(", ")
    ]
    await serve.wait_ready(within=120)
    await poll_until(
        lambda: len(_starts(serve)) == 2 and len(_workers(serve)) == 2,
        within=60,
        what="both processes serving, each with its queue worker",
        details=serve.text,
    )
    assert {start["pid"] for start in _starts(serve)} == set(children)
    assert all(start["loop"] == "uvloop" for start in _starts(serve))  # uvloop is installed
    assert _workers(serve) == set(children)  # each process runs a worker of its own

    # A fresh connection per request, so the kernel hands them to either process.
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=30, limits=fresh) as client:
        queued = []
        for _ in range(REQUESTS):
            response = await client.post("/api/v1/comparison", json=COMPARISON)
            assert response.status_code == 202, response.text
            queued.append(response.json()["queue_id"])
        assert fake.requests_for("openai")  # the outage was met, not skipped

        fake.heal("openai")  # recovery

        async def every_one_completed() -> bool:
            for queue_id in queued:
                status = (await client.get(f"/api/v1/status/{queue_id}")).json()
                assert status["status"] in {"queued", "processing", "completed"}, status
                if status["status"] != "completed":
                    return False
            return True

        await poll_until(
            every_one_completed, within=90, what="the queue to drain", details=serve.text
        )

        async def both_answered_a_status() -> bool:
            await client.get(f"/api/v1/status/{queued[0]}")
            return _status_answered_by(serve) == set(children)

        await poll_until(
            both_answered_a_status, within=30, what="a status answered by each process"
        )

    completions = count_by_request(serve.events("request_completed"))
    print(
        f"\nserve x2: {REQUESTS} queued during the outage; completed "
        f"{sum(completions[q] for q in queued)} times; status answered by pids "
        f"{sorted(_status_answered_by(serve))}"
    )
    assert {q: completions[q] for q in queued} == dict.fromkeys(queued, 1)

    family = _descendants(serve.pid)  # the two children and multiprocessing's tracker
    assert set(children) <= family
    serve.signal(signal.SIGTERM)
    assert await serve.exited(within=60) == 0, serve.text()[-3000:]
    assert _stopped_gracefully(serve) == set(children)
    assert not any(_alive(pid) for pid in children)  # the parent waited for both
    # multiprocessing's resource tracker ends by itself once its pipe closes with the parent.
    await poll_until(
        lambda: not any(_alive(pid) for pid in family), within=10, what="no orphan left behind"
    )


def _lines(process: ServiceProcess) -> list[dict[str, Any]]:
    """The JSON log lines of `process` (the parent's and both children's, on one stream)."""
    found = []
    for line in process.text().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def _starts(process: ServiceProcess) -> list[dict[str, Any]]:
    pattern = re.compile(r"serving on \S+ \(.*loop=(?P<loop>\w+), process=\d/2, pid=(?P<pid>\d+)\)")
    starts = []
    for line in _lines(process):
        match = pattern.search(line["event"])
        if match:
            assert line["pid"] == int(match["pid"])  # every line of a child names it
            starts.append({"loop": match["loop"], "pid": int(match["pid"])})
    return starts


def _workers(process: ServiceProcess) -> set[int]:
    return {
        line["pid"]
        for line in _lines(process)
        if line["event"].startswith("queue worker ") and line["event"].endswith(" started")
    }


def _status_answered_by(process: ServiceProcess) -> set[int]:
    return {
        line["pid"]
        for line in _lines(process)
        if line.get("logger") == "llm_provider_service.access"
        and str(line.get("path", "")).startswith("/api/v1/status/")
        and line.get("status") == 200
    }


def _stopped_gracefully(process: ServiceProcess) -> set[int]:
    return {
        line["pid"] for line in _lines(process) if line["event"] == "llm_provider_service stopped"
    }


def _descendants(pid: int) -> set[int]:
    """Every process whose parent is `pid`, read from /proc."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.add(int(stat.parent.name))
    return children


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_serve_processes_do_not_outlive_a_killed_parent(processes: ProcessPool) -> None:
    # SIGKILL cannot be forwarded: the kernel tells each child (PR_SET_PDEATHSIG) instead.
    serve = processes.start("serve", "serve", serve_workers=2, log_format="json")
    children = [
        int(p) for p in (await serve.wait_for_log(_CHILDREN.pattern, 90))["pids"].split(", ")
    ]
    await poll_until(
        lambda: len(_starts(serve)) == 2,
        within=90,
        what="both processes serving",
        details=serve.text,
    )

    serve.kill()

    await poll_until(
        lambda: not any(_alive(pid) for pid in children),
        within=60,
        what="the children to end with their parent",
        details=serve.text,
    )
    assert _stopped_gracefully(serve) == set(children)  # SIGTERM: each drained and stopped
