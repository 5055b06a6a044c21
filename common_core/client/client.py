"""`LLMProviderClient`: the async client of the LLM Provider Service for consuming services.

One client object owns one connection pool; use it as an async context manager and share it
across the tasks of a process. `compare` returns a `ComparisonResult` whether the service
answers at once (200) or queues the request (202); `compare_many` runs a batch with bounded
concurrency. Every failure is a `common_core.client.errors.LLMProviderServiceError`.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import httpx

from common_core.api_models import (
    ComparisonRequest,
    ComparisonResult,
    QueuedResponse,
    QueueStatusResponse,
)
from common_core.client._http import (
    COMPARISON_PATH,
    STATUS_PATH,
    ServiceHttp,
    error_of,
    expect,
    parse_model,
    retry_after_of,
)
from common_core.client._waiting import Queued, ResultWaiter
from common_core.client.backoff import RetryPolicy
from common_core.client.errors import DeadlineExceededError, LLMProviderServiceError
from common_core.client.progress import Progress, ProgressTracker

Outcome = ComparisonResult | LLMProviderServiceError


@dataclass(slots=True)
class _Job:
    """One logical comparison: its request, its one Idempotency-Key for every try, its
    deadline on the event loop's clock, and its queue_id once a 202 named one."""

    request: ComparisonRequest
    key: str
    deadline: float | None
    deadline_at: float | None
    queue_id: uuid.UUID | None = field(default=None)
    on_queued: Callable[[], None] | None = field(default=None)

    def post_headers(self) -> dict[str, str]:
        headers = {"Idempotency-Key": self.key}
        if self.request.correlation_id is not None:
            headers["X-Correlation-ID"] = str(self.request.correlation_id)
        return headers

    def deadline_error(self) -> DeadlineExceededError:
        where = (
            f"; request {self.queue_id} stays queued and its result will still be published"
            if self.queue_id
            else ""
        )
        return DeadlineExceededError(
            f"no result within the deadline of {self.deadline} s{where}",
            queue_id=self.queue_id,
            idempotency_key=self.key,
        )


class LLMProviderClient:
    """A client of the service at `base_url` (e.g. "http://llm-provider:8080").

    `api_key` is sent as `Authorization: Bearer`; `timeout` bounds each HTTP request (and
    the WebSocket handshake); `poll_interval` and `max_poll_interval` bound the backoff of
    polls and retries; `use_websocket=False` polls instead of watching the status
    WebSocket; `retries` is how many transient failures in a row one call rides out; `http`
    is an `httpx.AsyncClient` to use instead of an own one (its owner closes it); `rng`
    draws the jitter (seed it in tests). Raises `ValueError` for impossible values.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 30.0,
        use_websocket: bool = True,
        retries: int = 5,
        http: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not timeout > 0 or not 0 < poll_interval <= max_poll_interval or retries < 0:
            raise ValueError(
                "need timeout > 0, 0 < poll_interval <= max_poll_interval and retries >= 0"
            )
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self._service = ServiceHttp(self._http, base_url, api_key=api_key, timeout=timeout)
        self._policy = RetryPolicy(
            retries, poll_interval, max_poll_interval, rng or random.Random()
        )
        self._waiter = ResultWaiter(self._service, self._policy, use_websocket=use_websocket)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool, unless it was injected (`http=`)."""
        if self._owns_http:
            await self._http.aclose()

    async def compare(
        self,
        request: ComparisonRequest,
        *,
        idempotency_key: str | None = None,
        deadline: float | None = None,
    ) -> ComparisonResult:
        """One fresh judgement: the 200 result, or the queued request's result after a 202.

        Every try of this call sends the same `Idempotency-Key`: `idempotency_key`, else the
        request's `idempotency_key` field, else a new uuid4. Pass your own (derived from your
        own comparison id) to stay idempotent across process restarts; never derive it from
        the content or from an id shared by replicate comparisons: the same key returns the
        same judgement, and a replicate must be a new one.

        `deadline`: seconds the whole call may take (None: until the queue's TTL ends the
        request). Raises `DeadlineExceededError` past it (the request is not cancelled),
        `ComparisonFailedError` when a queued request ends failed, expired or cancelled,
        `ValueError` when `idempotency_key` and the request's field differ, and the typed
        error of the service's answer otherwise (after retrying transient ones).
        """
        return await self._run(_job(request, idempotency_key, deadline, _deadline_at(deadline)))

    async def compare_many(
        self,
        requests: Sequence[ComparisonRequest],
        *,
        concurrency: int = 8,
        on_progress: Callable[[Progress], None] | None = None,
        return_exceptions: bool = False,
        deadline: float | None = None,
    ) -> list[Outcome]:
        """`compare` for each request, at most `concurrency` at once, results in input order.

        `on_progress` is called after each comparison ends (what it raises propagates).
        With `return_exceptions=False` the first error cancels the comparisons still running
        and is raised; with True each error takes its request's place in the list.
        `deadline` bounds the whole batch; each request gets its own Idempotency-Key.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        deadline_at = _deadline_at(deadline)
        jobs = [_job(request, None, deadline, deadline_at) for request in requests]
        results: list[Outcome | None] = [None] * len(jobs)
        tracker = ProgressTracker(len(jobs), on_progress)
        for job in jobs:
            job.on_queued = tracker.queued
        pending = iter(range(len(jobs)))

        async def worker() -> None:
            for index in pending:  # shared by the workers: each index is taken once
                try:
                    results[index] = await self._run(jobs[index])
                except LLMProviderServiceError as error:
                    tracker.ended(succeeded=False)
                    if not return_exceptions:
                        raise
                    results[index] = error
                else:
                    tracker.ended(succeeded=True)

        await _all_or_cancel([worker() for _ in range(min(concurrency, len(jobs)))])
        done = [outcome for outcome in results if outcome is not None]
        assert len(done) == len(jobs)
        return done

    async def status(self, queue_id: uuid.UUID | str) -> QueueStatusResponse:
        """`GET /api/v1/status/<queue_id>`, retried after transient failures; raises
        `RequestRejectedError` (NOT_FOUND) for an unknown id, `ValueError` for a malformed
        one."""
        return await self._waiter.status(uuid.UUID(str(queue_id)))

    async def cancel(self, queue_id: uuid.UUID | str) -> QueueStatusResponse:
        """`DELETE /api/v1/status/<queue_id>`: withdraw a request that is still queued. One
        try, no retries (a repeat after a lost answer would see 409). Raises
        `RequestRejectedError` with code CONFLICT once processing has begun."""
        path = STATUS_PATH.format(queue_id=uuid.UUID(str(queue_id)))
        return expect(QueueStatusResponse, await self._service.send("DELETE", path))

    async def _run(self, job: _Job) -> ComparisonResult:
        loop = asyncio.get_running_loop()
        if job.deadline_at is not None and loop.time() >= job.deadline_at:
            raise job.deadline_error()
        scope = asyncio.timeout_at(job.deadline_at)
        try:
            async with scope:
                answer = await self._policy.run(
                    lambda: self._post(job), deadline_at=job.deadline_at
                )
                if isinstance(answer, ComparisonResult):
                    return answer
                job.queue_id = answer.response.queue_id
                if job.on_queued is not None:
                    job.on_queued()
                return await self._waiter.wait(answer)
        except TimeoutError:
            if not scope.expired():
                raise
            raise job.deadline_error() from None

    async def _post(self, job: _Job) -> ComparisonResult | Queued:
        # Only the fields the caller set: a service that predates a field refuses it.
        body = job.request.model_dump(mode="json", exclude_unset=True)
        response = await self._service.send(
            "POST", COMPARISON_PATH, json=body, headers=job.post_headers()
        )
        if response.status_code == 200:
            return parse_model(ComparisonResult, response)
        if response.status_code == 202:
            queued = parse_model(QueuedResponse, response)
            return Queued(queued, retry_after_of(response), asyncio.get_running_loop().time())
        raise error_of(response)


def _job(
    request: ComparisonRequest,
    idempotency_key: str | None,
    deadline: float | None,
    deadline_at: float | None,
) -> _Job:
    field_key = request.idempotency_key
    if idempotency_key and field_key and idempotency_key != field_key:
        raise ValueError("idempotency_key differs from the request's idempotency_key field")
    key = idempotency_key or field_key or str(uuid.uuid4())
    return _Job(request, key, deadline, deadline_at)


def _deadline_at(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    if not deadline > 0:
        raise ValueError(f"deadline must be positive seconds, got {deadline}")
    return asyncio.get_running_loop().time() + deadline


async def _all_or_cancel(coroutines: list[Coroutine[Any, Any, None]]) -> None:
    """Run `coroutines` as tasks; the first exception cancels the others and is raised."""
    tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
