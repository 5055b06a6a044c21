"""What the batch drills share: the service's settings for a drill, batch requests over HTTP,
and "exactly once" counted from the queue's records and from the result events.

A drill runs `serve` (the API, the worker and the batch engine in one process) as a real
subprocess on the session's redis-server, with the vendors' Batch APIs reached through
their real SDKs at the fake upstream, whose batches move only when the test says.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.support.fake_vendors import FakeUpstream
from tests.support.processes import ProcessPool, ServiceProcess, count_by_request, poll_until

POLL = 0.2  # BATCH_POLL_SECONDS
MAX_WAIT = 0.3  # BATCH_MAX_WAIT_SECONDS: a drill's requests are all posted well within it
LEASE = 20.0  # BATCH_LEASE_SECONDS: longer than a restart (else the rows are dropped, re-batched)
SUBMIT_TIMEOUT = 3.0  # BATCH_SUBMIT_TIMEOUT_SECONDS
BODY = {
    "user_prompt": "Which essay argues its thesis better?",
    "essay_a": "Essay A argues carefully, with evidence.",
    "essay_b": "Essay B asserts loudly, without evidence.",
}


def drill_defaults(fake: FakeUpstream) -> dict[str, object]:
    """The settings of every drill process: short batch timers, only Anthropic and OpenAI
    as batch providers, both at the fake upstream."""
    return {
        "anthropic_api_key": "sk-ant-drill",
        "anthropic_base_url": fake.anthropic_base_url,
        "openai_api_key": "sk-drill",
        "openai_base_url": fake.openai_base_url,
        "batch_providers": '["anthropic","openai"]',
        "batch_poll_seconds": POLL,
        "batch_max_wait_seconds": MAX_WAIT,
        "batch_lease_seconds": LEASE,
        "batch_submit_timeout_seconds": SUBMIT_TIMEOUT,
        "queue_poll_interval_seconds": 0.1,
        "queue_lease_seconds": 5,
        "queue_retry_base_seconds": 0.1,
        "queue_retry_max_seconds": 0.3,
    }


def batch_body(provider: str = "anthropic", **fields: Any) -> dict[str, Any]:
    """A comparison in the batch lane for `provider`."""
    return {
        **BODY,
        "processing_mode": "batch",
        "llm_config_overrides": {"provider_override": provider},
        **fields,
    }


async def post_batch(service: ServiceProcess, count: int, **body: Any) -> list[str]:
    """POST `count` identical batch requests (replicates of one pair); their queue ids."""
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10.0) as http:
        answers = [
            await http.post("/api/v1/comparison", json=batch_body(**body)) for _ in range(count)
        ]
    assert [a.status_code for a in answers] == [202] * count, [a.text for a in answers]
    return [str(a.json()["queue_id"]) for a in answers]


async def statuses(service: ServiceProcess, ids: list[str]) -> list[dict[str, Any]]:
    """GET /api/v1/status of each id (each must answer 200)."""
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10.0) as http:
        answers = await asyncio.gather(*(http.get(f"/api/v1/status/{i}") for i in ids))
    assert [a.status_code for a in answers] == [200] * len(ids), [a.text for a in answers]
    return [a.json() for a in answers]


async def until_statuses(
    service: ServiceProcess, ids: list[str], wanted: set[str], within: float = 30.0
) -> list[dict[str, Any]]:
    """The status bodies once every id's status is in `wanted`."""

    async def reached() -> list[dict[str, Any]] | None:
        bodies = await statuses(service, ids)
        return bodies if all(b["status"] in wanted for b in bodies) else None

    return await poll_until(
        reached, within=within, interval=0.1, what=f"{wanted} for {len(ids)}", details=service.text
    )


async def until_batches(fake: FakeUpstream, count: int, within: float = 30.0) -> list[str]:
    """The ids of the Anthropic fake's batches once it has made `count` (or more)."""
    return await poll_until(
        lambda: fake.anthropic_batches.ids if len(fake.anthropic_batches.ids) >= count else None,
        within=within,
        what=f"{count} Anthropic batch(es)",
    )


def custom_ids(fake: FakeUpstream, batch_id: str) -> list[str]:
    """The custom ids of a fake Anthropic batch's entries, in its order."""
    return [str(entry["custom_id"]) for entry in fake.anthropic_batches.batch(batch_id).requests]


def hexes(ids: list[str]) -> list[str]:
    """Queue ids as the engine writes them in custom ids (the UUID's hex)."""
    return [i.replace("-", "") for i in ids]


def event_counts(pool: ProcessPool, name: str, ids: list[str]) -> dict[str, int]:
    """How many `name` events (e.g. `request_completed`, `comparison_result`) each id has,
    over every process of the pool."""
    counts = count_by_request(pool.events(name))
    return {i: counts[i] for i in ids}


async def until_results(pool: ProcessPool, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The `comparison_result` events by request id, once each of `ids` has at least one
    (result events leave through the outbox, after the status says the request ended)."""

    def every() -> dict[str, list[dict[str, Any]]] | None:
        found = results_by_request(pool)
        return found if set(ids) <= set(found) else None

    return await poll_until(
        every,
        within=30,
        what="a result event for every request",
    )


def results_by_request(pool: ProcessPool) -> dict[str, list[dict[str, Any]]]:
    """The `comparison_result` events' data of every process, by request id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for event in pool.events("comparison_result"):
        found.setdefault(event.request_id, []).append(event.data)
    return found
