"""The `RequestQueue` contract run against the batch lane's `InMemoryRequestQueue`
(`batch_lane=True`): everything the realtime queue promises, and the lane's own behaviours."""

from __future__ import annotations

import pytest

import tests.contract.queue_contract as contract
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.settings import QueueSettings

# See test_memory.py for why a star import.
from tests.contract.queue_contract import *  # noqa: F403
from tests.factories import FakeClock


@pytest.fixture  # type: ignore[no-redef]  # the contract's says False
def batch_lane() -> bool:
    return True


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue_factory():
    def build(config: QueueSettings, clock: FakeClock) -> InMemoryRequestQueue:
        return InMemoryRequestQueue(config, clock, batch_lane=True)

    return build


@pytest.fixture
def advance(clock: FakeClock):
    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    return advance


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())
