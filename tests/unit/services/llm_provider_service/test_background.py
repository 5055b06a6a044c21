"""`BackgroundTasks`: one start and one ordered stop for `serve` and the standalone worker."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from dishka import AsyncContainer

from services.llm_provider_service.background import BackgroundTasks
from services.llm_provider_service.batch.engine import BatchEngine
from services.llm_provider_service.batch.registry import BatchAPIs
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.queue.durability import DurabilityWatch
from services.llm_provider_service.relay import ResultRelay
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.worker import QueueWorker


class Part:
    """Runs until its stop event is set, then records that it stopped (or fails)."""

    def __init__(self, name: str, log: list[str], *, fails: bool = False) -> None:
        self.name, self.log, self.fails = name, log, fails

    async def run(self, stop: asyncio.Event, **_: Any) -> None:
        self.log.append(f"{self.name} started")
        await stop.wait()
        if self.name == "worker":
            await asyncio.sleep(0.01)  # draining: the others must still be running meanwhile
        self.log.append(f"{self.name} stopped")
        if self.fails:
            raise RuntimeError(f"{self.name} broke")


class Lanes:
    """`BatchAPIs` as the start asks it: whether any provider has a Batch API here."""

    def __init__(self, *providers: str) -> None:
        self.providers = providers

    def items(self) -> list[tuple[str, None]]:
        return [(p, None) for p in self.providers]


class Container:
    def __init__(self, parts: dict[type, Part]) -> None:
        self.parts = parts

    async def get(self, kind: type) -> Part:
        return self.parts[kind]


def parts(log: list[str], *, relay_fails: bool = False, batch: bool = False) -> dict[type, Any]:
    return {
        BatchAPIs: Lanes("mock") if batch else Lanes(),
        BatchEngine: Part("batch", log),
        QueueWorker: Part("worker", log),
        ResultRelay: Part("relay", log, fails=relay_fails),
        DurabilityWatch: Part("watch", log),
        LifecycleEvents: Part("events", log),
    }


def settings(*, kafka: bool) -> Settings:
    return Settings(_env_file=None, kafka_enabled=kafka)


async def started(log: list[str], *, kafka: bool, **kwargs: Any) -> BackgroundTasks:
    container = cast(AsyncContainer, Container(parts(log, **kwargs.pop("part_args", {}))))
    tasks = await BackgroundTasks.start(container, settings(kafka=kafka), **kwargs)
    await asyncio.sleep(0)  # let every task reach its wait
    return tasks


async def test_the_worker_drains_before_the_relay_watch_and_event_drain_stop():
    log: list[str] = []
    tasks = await started(log, kafka=True, with_worker=True)

    await tasks.stop()

    assert sorted(log[:4]) == sorted(f"{n} started" for n in ("worker", "relay", "watch", "events"))
    assert log[4] == "worker stopped"
    assert sorted(log[5:]) == ["events stopped", "relay stopped", "watch stopped"]


async def test_without_kafka_there_is_no_event_drain_and_without_a_worker_none_runs():
    log: list[str] = []
    tasks = await started(log, kafka=False, with_worker=False)

    await tasks.stop()

    assert sorted(log) == ["relay started", "relay stopped", "watch started", "watch stopped"]


async def test_the_standalone_worker_ends_on_its_own_stop_event_then_the_rest_stop():
    log: list[str] = []
    signal = asyncio.Event()
    tasks = await started(log, kafka=False, with_worker=True, worker_stop=signal)

    signal.set()
    await tasks.worker_finished()
    assert "relay stopped" not in log
    await tasks.stop()

    assert log[-2:] in (["relay stopped", "watch stopped"], ["watch stopped", "relay stopped"])


async def test_a_failed_task_is_logged_and_the_others_still_stop(caplog: pytest.LogCaptureFixture):
    log: list[str] = []
    tasks = await started(log, kafka=True, with_worker=True, part_args={"relay_fails": True})

    with caplog.at_level(logging.ERROR):
        await tasks.stop()

    assert {"events stopped", "watch stopped", "relay stopped"} <= set(log)
    assert "background task result-relay failed" in caplog.text


async def test_the_batch_engine_runs_beside_the_worker_when_a_batch_api_is_configured():
    log: list[str] = []
    tasks = await started(log, kafka=False, with_worker=True, part_args={"batch": True})

    await tasks.stop()

    assert {"batch started", "batch stopped", "worker stopped"} <= set(log)
    assert log.index("batch stopped") < log.index("relay stopped")


async def test_no_batch_engine_runs_without_a_worker():
    log: list[str] = []
    tasks = await started(log, kafka=False, with_worker=False, part_args={"batch": True})

    await tasks.stop()

    assert "batch started" not in log
