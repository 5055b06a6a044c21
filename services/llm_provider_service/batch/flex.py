"""`FlexLane`: batch requests first tried as flex calls (`service_tier: "flex"`, about the
batch discount, synchronous) where a provider sells them, with `BATCH_FLEX_ENABLED`; a flex
refusal or timeout sends the request into the next provider batch, never to a full-price
call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from common_core.enums import LLMProviderType, ServedVia
from services.llm_provider_service.batch.context import BatchContext
from services.llm_provider_service.errors import (
    MaxTokensTooLowError,
    ProviderError,
    QueueUnavailableError,
)
from services.llm_provider_service.models import Lease
from services.llm_provider_service.prompt import render_prompt
from services.llm_provider_service.protocols import LLMProvider

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FlexProviders:
    """Per provider that sells flex, the adapter that asks for it (`FLEX_BUILDERS`); empty
    when none is configured or BATCH_FLEX_ENABLED is off."""

    adapters: Mapping[LLMProviderType, LLMProvider] = field(default_factory=dict)


class FlexLane:
    """Runs flex calls for claimed batch requests as tasks (each heartbeating its lease);
    a call that answers completes its request (`served_via: "flex"`), a final error fails
    it, and a refusal, a 5xx or a timeout hands its lease to the next batch (`fallbacks`).
    After a crash a lease in a flex call lapses and the reaper requeues the request."""

    def __init__(self, context: BatchContext, flex: FlexProviders) -> None:
        self._c = context
        self._adapters = dict(flex.adapters) if context.settings.batch.flex_enabled else {}
        self._tasks: dict[LLMProviderType, set[asyncio.Task[None]]] = defaultdict(set)
        self._fallbacks: dict[LLMProviderType, list[Lease]] = defaultdict(list)

    def serves(self, provider: LLMProviderType) -> bool:
        return provider in self._adapters

    def free_slots(self, provider: LLMProviderType) -> int:
        """How many more flex calls to `provider` may start (WORKER_CONCURRENCY_PER_PROVIDER
        at once)."""
        busy = len(self._tasks[provider])
        return max(0, self._c.settings.worker.concurrency_per_provider - busy)

    def fallbacks(self, provider: LLMProviderType) -> list[Lease]:
        """The leases whose flex call was refused since the last ask: for the next batch."""
        leases, self._fallbacks[provider] = self._fallbacks[provider], []
        return leases

    def start(self, provider: LLMProviderType, leases: list[Lease]) -> None:
        for lease in leases:
            task = asyncio.create_task(self._call(lease), name=f"flex-{lease.queue_id}")
            self._tasks[provider].add(task)
            task.add_done_callback(self._tasks[provider].discard)

    async def idle(self) -> None:
        """Wait for every flex call in flight to end (tests; a drain)."""
        while tasks := {t for group in self._tasks.values() for t in group}:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop the calls in flight, giving their requests back unspent."""
        tasks = [t for group in self._tasks.values() for t in group]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _call(self, lease: Lease) -> None:
        job = lease.job
        adapter = self._adapters[job.provider]
        model = job.overrides.model_override or adapter.default_model
        await self._c.calls.started(job, model, attempt=lease.attempt, from_queue=True)
        prompt = render_prompt(job.request, swapped=job.swapped)
        started = time.perf_counter()
        call = asyncio.create_task(adapter.compare(prompt, job.overrides))
        beat = asyncio.create_task(self._keep_alive(lease, call))
        try:
            answer = await asyncio.wait_for(call, self._c.settings.batch.flex_timeout_seconds)
        except asyncio.CancelledError:
            if beat.done():  # the lease was lost: the request is someone else's now
                return
            await self._c.outcomes.released(lease)  # shutdown
            raise
        except TimeoutError:
            self._fallbacks[job.provider].append(lease)
            return
        except ProviderError as exc:
            if exc.retryable:  # refused under load, 5xx, timeout: into the batch instead
                self._fallbacks[job.provider].append(lease)
            else:
                await self._c.outcomes.failed(lease, exc.info(model), exc)
            return
        except MaxTokensTooLowError as exc:
            await self._c.outcomes.failed(lease, exc.info(model), exc)
            return
        finally:
            beat.cancel()
        result = await self._c.calls.answered_elsewhere(
            job, answer, elapsed=time.perf_counter() - started, served_via=ServedVia.FLEX
        )
        claimed = lease.claimed_at or lease.queued_at
        wait = (claimed - lease.queued_at).total_seconds()
        if await self._c.outcomes.completed(lease, result, wait=wait):
            self._c.count_savings(job.provider, result)

    async def _keep_alive(self, lease: Lease, call: asyncio.Task[object]) -> None:
        interval = self._c.settings.batch.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(QueueUnavailableError):
                if not await self._c.queue.heartbeat(lease):
                    logger.warning("flex call for %s dropped: lease lost", lease.queue_id)
                    call.cancel()
                    return
