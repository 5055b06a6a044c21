"""`BackgroundTasks`: what runs beside the request path, started and stopped in one place for
both `serve` (the app's lifecycle hooks) and the standalone `worker` command.

Started: the queue worker (when this process runs one) and beside it the `BatchEngine` (when
a Batch API is configured), the `ResultRelay` (every process
relays: results of immediate requests are in the outbox too), the `DurabilityWatch` and,
with Kafka, the lifecycle event drain (`LifecycleEvents.run`; the log publisher never
blocks, so without Kafka events are written inline).

Stopped in order: the worker first drains and the batch engine ends its tick (their last
results reach the queue's unannounced set), then the relay ends its pass (what is left waits
in the outbox), the watch stops and the event drain sends what is buffered, within
LIFECYCLE_EVENTS_SHUTDOWN_DRAIN_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging

from dishka import AsyncContainer

from services.llm_provider_service.batch.engine import BatchEngine
from services.llm_provider_service.batch.registry import BatchAPIs
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.queue.durability import DurabilityWatch
from services.llm_provider_service.relay import ResultRelay
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.worker import QueueWorker

logger = logging.getLogger(__name__)


class BackgroundTasks:
    """The worker and the tasks that outlive it, as one unit (see the module docstring)."""

    def __init__(
        self,
        worker: asyncio.Task[None] | None,
        worker_stop: asyncio.Event,
        others: list[asyncio.Task[None]],
        others_stop: asyncio.Event,
        batch: asyncio.Task[None] | None = None,
    ) -> None:
        self._worker = worker
        self._batch = batch
        self._worker_stop = worker_stop
        self._others = others
        self._others_stop = others_stop
        self._worker_awaited = False

    @classmethod
    async def start(
        cls,
        container: AsyncContainer,
        settings: Settings,
        *,
        with_worker: bool,
        worker_stop: asyncio.Event | None = None,
    ) -> BackgroundTasks:
        """Start them from the container. `worker_stop`, when given, is the event that ends
        the worker (the standalone command's signal); otherwise `stop()` sets one."""
        worker_stop = worker_stop or asyncio.Event()
        others_stop = asyncio.Event()
        others: list[asyncio.Task[None]] = []
        watch = await container.get(DurabilityWatch)
        others.append(asyncio.create_task(watch.run(others_stop), name="durability-watch"))
        if settings.uses_kafka:
            events = await container.get(LifecycleEvents)
            drain = events.run(
                others_stop, shutdown_seconds=settings.lifecycle_events.shutdown_drain_seconds
            )
            others.append(asyncio.create_task(drain, name="lifecycle-events"))
        worker = batch = None
        if with_worker:
            queue_worker = await container.get(QueueWorker)
            worker = asyncio.create_task(queue_worker.run(worker_stop), name="queue-worker")
            if any((await container.get(BatchAPIs)).items()):
                engine = await container.get(BatchEngine)
                batch = asyncio.create_task(engine.run(worker_stop), name="batch-engine")
        relay = await container.get(ResultRelay)
        others.append(asyncio.create_task(relay.run(others_stop), name="result-relay"))
        return cls(worker, worker_stop, others, others_stop, batch)

    async def worker_finished(self) -> None:
        """Wait for the worker to end (after its stop event), raising what ended it."""
        if self._worker is not None:
            self._worker_awaited = True  # what ended it is raised here, not logged by stop()
            await self._worker

    async def stop(self) -> None:
        """Stop everything in order (see the module docstring); a task that failed is
        logged, not raised, so the rest still stop."""
        self._worker_stop.set()
        tasks = [self._worker] if self._worker is not None and not self._worker_awaited else []
        tasks += [self._batch] if self._batch is not None else []
        _log_failures(await asyncio.gather(*tasks, return_exceptions=True), tasks)
        self._others_stop.set()
        _log_failures(await asyncio.gather(*self._others, return_exceptions=True), self._others)


def _log_failures(outcomes: list[BaseException | None], tasks: list[asyncio.Task[None]]) -> None:
    for outcome, task in zip(outcomes, tasks, strict=True):
        if isinstance(outcome, Exception):
            logger.error("background task %s failed", task.get_name(), exc_info=outcome)
