"""`LLMProviderClient.compare_many`: input order, bounded concurrency, progress, and what
becomes of errors."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from common_core.api_models import ComparisonResult
from common_core.client import Progress, RequestRejectedError
from tests.integration.client.conftest import Serve, client_for, comparison


def numbered(count: int, **fields: Any) -> list[Any]:
    return [comparison(metadata={"index": index}, **fields) for index in range(count)]


async def test_results_come_in_input_order_with_bounded_concurrency(serve: Serve, http, recorder):
    served = await serve(mock_latency_ms=40.0)  # calls overlap, so the bound is what limits
    seen: list[Progress] = []

    async with client_for(served.base_url, http) as client:
        results = await client.compare_many(numbered(20), concurrency=4, on_progress=seen.append)

    assert all(isinstance(r, ComparisonResult) for r in results)
    assert [r.metadata["index"] for r in results] == list(range(20))  # type: ignore[union-attr]
    assert recorder.max_in_flight == 4
    assert len(recorder.posts) == 20
    assert [p.done for p in seen] == list(range(1, 21))
    assert all(a.succeeded <= b.succeeded for a, b in itertools.pairwise(seen))
    assert seen[-1] == Progress(total=20, done=20, succeeded=20, failed=0, queued=0)


async def test_queued_comparisons_are_counted_in_progress(serve: Serve, http):
    served = await serve()
    seen: list[Progress] = []

    async with client_for(served.base_url, http) as client:
        results = await client.compare_many(
            numbered(3, processing_mode="async"), concurrency=3, on_progress=seen.append
        )

    assert [r.metadata["index"] for r in results] == [0, 1, 2]  # type: ignore[union-attr]
    assert seen[-1] == Progress(total=3, done=3, succeeded=3, failed=0, queued=3)


async def test_with_return_exceptions_errors_take_their_places(serve: Serve, http):
    served = await serve()
    requests = numbered(10)
    refused = {2, 7}
    for index in refused:  # not in the callback topic allow-list: 400 CALLBACK_NOT_ALLOWED
        requests[index] = comparison(metadata={"index": index}, callback_topic="elsewhere.t")
    seen: list[Progress] = []

    async with client_for(served.base_url, http) as client:
        results = await client.compare_many(
            requests, concurrency=3, return_exceptions=True, on_progress=seen.append
        )

    for index, outcome in enumerate(results):
        if index in refused:
            assert isinstance(outcome, RequestRejectedError)
            assert outcome.code == "CALLBACK_NOT_ALLOWED"
        else:
            assert isinstance(outcome, ComparisonResult)
            assert outcome.metadata["index"] == index
    assert seen[-1] == Progress(total=10, done=10, succeeded=8, failed=2, queued=0)


async def test_without_return_exceptions_the_first_error_cancels_the_rest(
    serve: Serve, http, recorder
):
    served = await serve(mock_latency_ms=100.0)
    requests = numbered(12)
    requests[1] = comparison(callback_topic="elsewhere.t")

    async with client_for(served.base_url, http) as client:
        with pytest.raises(RequestRejectedError) as raised:
            await client.compare_many(requests, concurrency=2)
        sent = len(recorder.posts)
        await asyncio.sleep(0.3)

    assert raised.value.code == "CALLBACK_NOT_ALLOWED"
    assert sent < 12
    assert len(recorder.posts) == sent  # nothing more was sent after the error
