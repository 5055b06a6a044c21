"""The `SpillStore` contract run against `InMemorySpillStore`."""

from __future__ import annotations

import pytest

import tests.contract.spill_store_contract as contract
from services.llm_provider_service.batch.spill_store_memory import InMemorySpillStore

# A star import collects the contract here (see tests/unit/.../queue/test_memory.py for why).
from tests.contract.spill_store_contract import *  # noqa: F403
from tests.factories import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> InMemorySpillStore:
    return InMemorySpillStore(clock=clock)


@pytest.fixture
def advance(clock: FakeClock):
    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    return advance


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())
