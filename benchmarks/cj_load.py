"""Load test of concurrent CJ assessments through the service, with a provider outage in the
middle: every comparison must end with exactly one judgement, none lost.

`sessions` x `comparisons` requests (processing_mode `queue_if_unavailable`, each with an
idempotency key and its session and pair in `metadata`) go to `serve` with the Redis queue
(a private redis-server) and the mock provider (20 ms latency). Once half have been sent the
mock fails every call (`POST /api/v1/dev/mock-fault`) for `outage_seconds`; requests caught by
the outage are answered 202 and polled on `GET /api/v1/status/<queue_id>` until they end.

    python -m benchmarks.cj_load --sessions 2 --comparisons 5 --outage-seconds 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from benchmarks.gateway import processes
from benchmarks.gateway.summary import percentile
from devtools.redis_server import RedisServer

TERMINAL = {"completed", "failed", "expired", "cancelled"}


@dataclass(frozen=True)
class CJLoadOptions:
    sessions: int = 20
    comparisons: int = 225
    outage_seconds: float = 30.0
    mock_latency_ms: float = 20.0
    callers_per_session: int = 10
    poll_interval_seconds: float = 1.0
    breaker_reset_seconds: float = 5.0
    give_up_seconds: float = 600.0


@dataclass
class Tally:
    """What the callers saw: one entry per comparison, keyed (session, pair)."""

    sent_at: dict[tuple[int, int], float] = field(default_factory=dict)
    ended_at: dict[tuple[int, int], float] = field(default_factory=dict)
    judgements: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    queued: dict[tuple[int, int], str] = field(default_factory=dict)
    immediate: int = 0
    ended_without_judgement: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)

    def judged(self, key: tuple[int, int], result: dict[str, Any], now: float) -> None:
        # The key from the echoed metadata, not from the request: a mixed-up answer shows.
        echoed = result.get("metadata", {})
        found = (int(echoed.get("session", -1)), int(echoed.get("pair", -1)))
        self.judgements.setdefault(found, []).append(str(result["request_id"]))
        self.ended_at[key] = now


def service_settings(redis_url: str, options: CJLoadOptions) -> dict[str, str]:
    return {
        "LLM_PROVIDER_SERVICE_ENABLE_QUEUE_PERSISTENCE": "true",
        "LLM_PROVIDER_SERVICE_REDIS_URL": redis_url,
        "LLM_PROVIDER_SERVICE_MOCK_LATENCY_MS": str(options.mock_latency_ms),
        "LLM_PROVIDER_SERVICE_MOCK_LATENCY_JITTER_MS": "5",
        "LLM_PROVIDER_SERVICE_CIRCUIT_BREAKER_RESET_TIMEOUT_SECONDS": str(
            options.breaker_reset_seconds
        ),
        "LLM_PROVIDER_SERVICE_QUEUE_POLL_INTERVAL_SECONDS": "0.1",
        "LLM_PROVIDER_SERVICE_WORKER_CONCURRENCY_PER_PROVIDER": "16",
    }


async def _send(
    client: httpx.AsyncClient, run: str, key: tuple[int, int], tally: Tally, bar: tqdm[Any]
) -> None:
    session, pair = key
    body = {
        "user_prompt": f"Session {session}: which essay argues better? {{essay_a}} / {{essay_b}}",
        "essay_a": f"Essay {pair} of session {session}, with evidence. " * 20,
        "essay_b": f"Essay {pair + 1} of session {session}, a story. " * 20,
        "metadata": {"session": session, "pair": pair},
        "idempotency_key": f"{run}-{session}-{pair}",
    }
    tally.sent_at[key] = time.monotonic()
    response = await client.post("/api/v1/comparison", json=body)
    if response.status_code == 200:
        tally.immediate += 1
        tally.judged(key, response.json(), time.monotonic())
        bar.update(1)
    elif response.status_code == 202:
        tally.queued[key] = response.json()["queue_id"]
    else:
        name = f"HTTP {response.status_code}"
        tally.refused[name] = tally.refused.get(name, 0) + 1
        tally.ended_at[key] = time.monotonic()
        bar.update(1)


async def _poll(
    client: httpx.AsyncClient, tally: Tally, options: CJLoadOptions, bar: tqdm[Any]
) -> None:
    """Round after round, the status of every queued comparison not yet ended, until all
    have ended (or `give_up_seconds`)."""
    limit = asyncio.Semaphore(32)
    deadline = time.monotonic() + options.give_up_seconds

    async def check(key: tuple[int, int], queue_id: str) -> None:
        async with limit:
            response = await client.get(f"/api/v1/status/{queue_id}")
        record = response.json()
        if response.status_code != 200 or record["status"] not in TERMINAL:
            return
        now = time.monotonic()
        if record["status"] == "completed":
            tally.judged(key, record["result"], now)
        else:
            kind = record["status"]
            tally.ended_without_judgement[kind] = tally.ended_without_judgement.get(kind, 0) + 1
            tally.ended_at[key] = now
        bar.update(1)

    while time.monotonic() < deadline:
        pending = [(k, q) for k, q in tally.queued.items() if k not in tally.ended_at]
        if not pending:
            return
        await asyncio.gather(*(check(k, q) for k, q in pending))
        await asyncio.sleep(options.poll_interval_seconds)


async def _outage(client: httpx.AsyncClient, seconds: float) -> float:
    """The mock fails every call for `seconds` from now on; returns when (monotonic) it
    healed."""
    url = "/api/v1/dev/mock-fault"
    down = {"error_rate": 1.0, "error_kind": "server_error"}
    (await client.post(url, json=down)).raise_for_status()
    await asyncio.sleep(seconds)
    (await client.post(url, json={"error_rate": 0.0})).raise_for_status()
    return time.monotonic()


async def _drive(base_url: str, options: CJLoadOptions) -> tuple[Tally, float, float]:
    """The first half of every session's comparisons with the provider up, the second half
    as the outage begins (all sent while it lasts, unless the sending outlasts it), then
    polling until every queued comparison has ended."""
    total = options.sessions * options.comparisons
    tally, run = Tally(), uuid.uuid4().hex[:12]
    callers = options.sessions * options.callers_per_session
    limits = httpx.Limits(max_connections=callers + 40, max_keepalive_connections=callers + 40)
    keys = [(s, p) for p in range(options.comparisons) for s in range(options.sessions)]
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as client:
        with tqdm(total=total, desc="cj sessions", unit="cmp", dynamic_ncols=True) as bar:

            async def send_all(batch: list[tuple[int, int]]) -> None:
                todo = iter(batch)

                async def caller() -> None:
                    for key in todo:
                        await _send(client, run, key, tally, bar)

                await asyncio.gather(*(caller() for _ in range(callers)))

            started = time.monotonic()
            await send_all(keys[: total // 2])
            outage = asyncio.create_task(_outage(client, options.outage_seconds))
            await asyncio.sleep(0.05)  # the fault is set before the second half goes out
            await send_all(keys[total // 2 :])
            await _poll(client, tally, options, bar)
            healed = await outage
    return tally, started, healed


def summarize(
    tally: Tally, options: CJLoadOptions, started: float, healed: float
) -> dict[str, Any]:
    """The no-loss accounting and the latency distribution, from what the callers saw."""
    total = options.sessions * options.comparisons
    expected = {(s, p) for s in range(options.sessions) for p in range(options.comparisons)}
    counts = [len(tally.judgements.get(key, [])) for key in expected]
    request_ids = [rid for ids in tally.judgements.values() for rid in ids]
    latencies = [(tally.ended_at[k] - tally.sent_at[k]) * 1000 for k in tally.ended_at]
    queued_latencies = [
        (tally.ended_at[k] - tally.sent_at[k]) * 1000 for k in tally.queued if k in tally.ended_at
    ]
    last_end = max(tally.ended_at.values(), default=healed)
    return {
        "sessions": options.sessions,
        "comparisons_per_session": options.comparisons,
        "requests": total,
        "outage_seconds": options.outage_seconds,
        "mock_latency_ms": options.mock_latency_ms,
        "answered_at_once": tally.immediate,
        "queued": len(tally.queued),
        "refused": dict(tally.refused),
        "judged_exactly_once": sum(1 for c in counts if c == 1),
        "judged_more_than_once": sum(1 for c in counts if c > 1),
        "not_judged": sum(1 for c in counts if c == 0),
        "ended_without_judgement": dict(tally.ended_without_judgement),
        "unexpected_judgements": sum(
            len(v) for k, v in tally.judgements.items() if k not in expected
        ),
        "duplicate_request_ids": len(request_ids) - len(set(request_ids)),
        "lost": total - sum(1 for c in counts if c >= 1),
        "drain_seconds_after_outage": round(max(0.0, last_end - healed), 2),
        "wall_seconds": round(last_end - started, 2),
        "latency_ms": _distribution(latencies),
        "queued_latency_ms": _distribution(queued_latencies),
        "latencies_ms": sorted(round(x, 1) for x in latencies),
    }


def _distribution(values: list[float]) -> dict[str, float | None]:
    found = {f"p{p}": percentile(values, p) for p in (50, 95, 99)}
    found["max"] = max(values, default=None)
    return {k: None if v is None else round(v, 1) for k, v in found.items()}


async def run_cj_load(options: CJLoadOptions) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cj-load-") as directory:
        redis = RedisServer(Path(directory) / "redis")
        await asyncio.to_thread(redis.start)
        try:
            settings = service_settings(redis.url, options)
            service = await asyncio.to_thread(processes.start_service, settings)
            try:
                tally, started, healed = await _drive(service.url, options)
            finally:
                service.stop()
        finally:
            redis.stop()
    return summarize(tally, options, started, healed)


def parser() -> argparse.ArgumentParser:
    found = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = CJLoadOptions()
    found.add_argument("--sessions", type=int, default=defaults.sessions)
    found.add_argument("--comparisons", type=int, default=defaults.comparisons)
    found.add_argument("--outage-seconds", type=float, default=defaults.outage_seconds)
    return found


if __name__ == "__main__":
    arguments = parser().parse_args()
    options = CJLoadOptions(arguments.sessions, arguments.comparisons, arguments.outage_seconds)
    report = asyncio.run(run_cj_load(options))
    print(json.dumps({k: v for k, v in report.items() if k != "latencies_ms"}, indent=1))
