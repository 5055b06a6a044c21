"""The `RequestQueue` contract run against `InMemoryRequestQueue`, plus what only it promises."""

from __future__ import annotations

import logging
import time

import pytest

import tests.contract.queue_contract as contract
from services.llm_provider_service.protocols import RequestQueue
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.settings import QueueSettings, Settings

# The star import collects every contract test into this module, where the three fixtures
# below bind them to this implementation. It is the cleanest way to reuse the suite: the
# contract module stays free of any implementation and is never collected on its own, and a
# Redis harness is one more module like this one with its own three fixtures, so each
# implementation's failures show under its own module name. (A parametrized fixture would
# need a shared conftest that imports every implementation, Redis servers included.)
from tests.contract.queue_contract import *  # noqa: F403
from tests.factories import FakeClock, make_job, make_result


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue_factory():
    return InMemoryRequestQueue


@pytest.fixture
def advance(clock: FakeClock):
    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    return advance


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert len(contract_tests) > 30
    assert contract_tests <= set(globals())  # e.g. an `__all__` that forgot one


def test_it_satisfies_the_protocol() -> None:
    config = QueueSettings(max_size=1, max_attempts=1, lease_seconds=1.0)
    queue: RequestQueue = InMemoryRequestQueue(config)  # mypy checks the structural match
    assert isinstance(queue, InMemoryRequestQueue)


def test_config_reads_the_settings() -> None:
    settings = Settings(
        queue_max_size=7,
        queue_max_attempts=2,
        queue_lease_seconds=4.5,
        queue_priority_boost_seconds=30,
        queue_result_retention_seconds=900,
    )

    config = settings.queue

    boost, retention = config.priority_boost_seconds, config.result_retention_seconds
    assert (config.max_size, config.max_attempts, config.lease_seconds) == (7, 2, 4.5)
    assert (boost, retention) == (30.0, 900.0)
    assert config.priority_boost_ms == 30_000


async def test_uses_the_real_clock_by_default() -> None:
    queue = InMemoryRequestQueue(
        QueueSettings(max_size=10, max_attempts=3, result_retention_seconds=60)
    )
    before = time.time()

    record = await queue.enqueue(make_job(), priority=5, ttl_seconds=60)

    assert before - 1 <= record.queued_at.timestamp() <= time.time() + 1


async def test_close_names_waiting_and_in_flight_requests_and_bounds_the_list(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    queue = InMemoryRequestQueue(
        QueueSettings(max_size=100, max_attempts=3, result_retention_seconds=60),
        clock=clock,
    )
    jobs = [make_job() for _ in range(25)]
    for job in jobs:
        await queue.enqueue(job, priority=5, ttl_seconds=60)
    leases = await queue.claim(jobs[0].provider, limit=3, owner="w")
    by_id = {job.request_id: job for job in jobs}
    await queue.complete(leases[0], make_result(by_id[leases[0].queue_id]))

    with caplog.at_level(logging.WARNING, logger="services.llm_provider_service.queue.memory"):
        await queue.close()

    [warning] = caplog.records
    message = warning.getMessage()
    assert warning.levelno == logging.WARNING
    assert "24 accepted requests" in message
    assert "22 waiting, 2 in flight" in message
    named = [str(job.request_id) for job in jobs if str(job.request_id) in message]
    assert str(leases[0].queue_id) not in named
    assert len(named) == 20
    assert "and 4 more" in message
