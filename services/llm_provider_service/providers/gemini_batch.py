"""`GeminiBatchAPI`: the Gemini Developer API's batch jobs (`batchGenerateContent`) through
google-genai's async client, as the batch lane's `BatchAPI`.

Documented choices (`documentation/batch.md`, "## Gemini"):

- Inline requests only, at most `min(1_000, BATCH_MAX_ITEMS)` per job and 90 % of the
  20 MB inline cap, counted as the JSON each entry adds. Each entry is built by
  `gemini_request.generation_config`, exactly as the realtime call's request (structured
  output by `response_json_schema`), with `metadata={"key": custom_id, "index": "<i>"}`.
- The job's display name is `spill-<tag>`: `find` looks for it in the job list.
- The client has no `retry_options`, so the SDK makes one attempt per call: the create is
  never repeated (it is not idempotent), and the lane's own polling repeats the reads.
- Results are inline in the job (`dest.inlined_responses`), read with `get`; each row is
  named by its `metadata.key` (`gemini_batch_rows.py`).
- A job that is not ended is cancelled with `cancel`; `delete` removes the job and its
  inline data (a job already gone is no error).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import httpx
import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import (
    BatchAPIUnavailableError,
    BatchCaps,
    BatchCreateAmbiguousError,
    BatchCreateRefusedError,
    BatchEntry,
    BatchPoll,
    BatchRow,
    BatchState,
    ProviderBatch,
)
from services.llm_provider_service.providers.gemini_answer import translate_error
from services.llm_provider_service.providers.gemini_batch_rows import (
    INDEX,
    KEY,
    job_poll,
    job_rows,
)
from services.llm_provider_service.providers.gemini_request import generation_config
from services.llm_provider_service.settings import ProviderSettings

logger = logging.getLogger(__name__)

_PROVIDER = LLMProviderType.GOOGLE
MAX_ITEMS = 1_000  # inline jobs stay modest: a huge inline output times out `get`
MAX_BYTES = 18_000_000  # 90 % of the 20 MB inline request cap
RETRIEVE_AT_MOST = 3  # more open jobs than this are polled with pages of the list
LIST_PAGE_SIZE = 100
LIST_MAX_PAGES = 10  # a poll or find reads at most this many pages of the list
_ENTRY_OVERHEAD = 64  # the JSON around one entry's request and metadata
_NOT_CONNECTED = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx2.ConnectError,
    httpx2.ConnectTimeout,
)


def display_name(tag: str) -> str:
    return f"spill-{tag}"


class GeminiBatchAPI:
    """A `BatchAPI` for Gemini (see the module docstring)."""

    def __init__(self, client: genai.Client, config: ProviderSettings, max_items: int) -> None:
        self._client = client
        self._config = config
        self._caps = BatchCaps(max_items=min(MAX_ITEMS, max_items), max_bytes=MAX_BYTES)

    @property
    def provider(self) -> LLMProviderType:
        return _PROVIDER

    @property
    def caps(self) -> BatchCaps:
        return self._caps

    def model_for(self, overrides: LLMConfigOverrides) -> str:
        return overrides.model_override or self._config.default_model

    def supports(self, model: str) -> bool:
        """Gemini models (`gemini-*`) have batch jobs; anything else is refused."""
        return model.removeprefix("models/").startswith("gemini-")

    def entry_bytes(self, entry: BatchEntry) -> int:
        request = self._request(entry, self.model_for(entry.overrides), 0)
        body = request.model_dump(mode="json", exclude_none=True)
        return len(json.dumps(body)) + _ENTRY_OVERHEAD

    def _request(self, entry: BatchEntry, model: str, index: int) -> types.InlinedRequest:
        config = generation_config(entry.prompt, entry.overrides, model)
        return types.InlinedRequest(
            contents=entry.prompt.user_prompt,
            metadata={KEY: entry.custom_id, INDEX: str(index)},
            config=config,
        )

    async def create(self, tag: str, model: str, entries: Sequence[BatchEntry]) -> ProviderBatch:
        """One `batchGenerateContent` call, never repeated (see `BatchAPI.create`)."""
        requests = [self._request(entry, model, i) for i, entry in enumerate(entries)]
        config = types.CreateBatchJobConfig(display_name=display_name(tag))
        try:
            job = await self._client.aio.batches.create(model=model, src=requests, config=config)
        except genai_errors.APIError as exc:
            if 400 <= exc.code < 500 and exc.code != 408:
                error = translate_error(exc, self._config.timeout_seconds)
                raise BatchCreateRefusedError(
                    error.message, retry_after=error.retry_after, capacity=exc.code == 429
                ) from exc
            raise BatchCreateAmbiguousError(f"gemini batch create answered {exc.code}") from exc
        except _NOT_CONNECTED as exc:  # the request never left: no job was made
            raise BatchCreateRefusedError(
                f"cannot reach gemini: {type(exc).__name__}", capacity=True
            ) from exc
        except Exception as exc:  # a timeout, a dropped connection, an unreadable answer
            detail = f"{type(exc).__name__}: {exc}"[:300]
            raise BatchCreateAmbiguousError(f"gemini batch create: {detail}") from exc
        if not job.name:
            raise BatchCreateAmbiguousError("gemini batch create answered without a job name")
        return self._batch(job, model, len(entries), datetime.now(UTC))

    def _batch(self, job: types.BatchJob, model: str, count: int, since: datetime) -> ProviderBatch:
        assert job.name is not None
        return ProviderBatch(
            provider=_PROVIDER,
            batch_id=job.name,
            model=model,
            created_at=job.create_time or since,
            item_count=count,
        )

    async def find(
        self,
        tag: str,
        model: str,
        item_count: int,
        since: datetime,
        exclude: frozenset[str] = frozenset(),
    ) -> ProviderBatch | None:
        """The job whose display name is `spill-<tag>`, from the job list."""
        wanted = display_name(tag)
        async for job in self._jobs():
            if job.display_name == wanted and job.name and job.name not in exclude:
                return self._batch(job, model, item_count, since)
        return None

    async def poll(self, batches: Sequence[ProviderBatch]) -> dict[str, BatchPoll]:
        """A `get` per job for up to `RETRIEVE_AT_MOST` jobs, else pages of the list (which
        says each job's state). A job `get` cannot find is FAILED, retryable: it is gone."""
        if len(batches) > RETRIEVE_AT_MOST:
            wanted = {batch.batch_id for batch in batches}
            found: dict[str, BatchPoll] = {}
            try:
                async for job in self._jobs():
                    if job.name in wanted:
                        found[job.name] = job_poll(job)
                        if len(found) == len(wanted):
                            break
            except BatchAPIUnavailableError:
                if not found:
                    raise
            return found
        polls = await asyncio.gather(*(self._poll_one(b) for b in batches))
        answered = {b.batch_id: poll for b, poll in zip(batches, polls, strict=True) if poll}
        if batches and not answered:
            raise BatchAPIUnavailableError("gemini answered no batch job poll")
        return answered

    async def _poll_one(self, batch: ProviderBatch) -> BatchPoll | None:
        try:
            return job_poll(await self._client.aio.batches.get(name=batch.batch_id))
        except genai_errors.APIError as exc:
            if exc.code == 404:
                return BatchPoll(
                    state=BatchState.FAILED,
                    provider_status="NOT_FOUND",
                    error=f"gemini has no batch job {batch.batch_id}",
                    retryable=True,
                )
            logger.info("gemini batch %s poll failed: %s", batch.batch_id, exc.code)
            return None
        except Exception as exc:
            logger.info("gemini batch %s poll failed: %s", batch.batch_id, type(exc).__name__)
            return None

    async def _jobs(self) -> AsyncIterator[types.BatchJob]:
        """The job list, at most `LIST_MAX_PAGES` pages; `BatchAPIUnavailableError` when a
        page cannot be read."""
        try:
            pager = await self._client.aio.batches.list(
                config=types.ListBatchJobsConfig(page_size=LIST_PAGE_SIZE)
            )
            for _ in range(LIST_MAX_PAGES):
                for job in pager.page:
                    yield job
                if not pager.config.get("page_token"):
                    return
                await pager.next_page()
        except Exception as exc:
            raise _unavailable("list", exc) from exc

    async def rows(self, batch: ProviderBatch) -> AsyncIterator[BatchRow]:
        """The inline responses of an ended job (read with one `get`)."""
        try:
            job = await self._client.aio.batches.get(name=batch.batch_id)
        except Exception as exc:
            raise _unavailable("get", exc) from exc
        for row in job_rows(job, batch.model):
            yield row

    async def cancel(self, batch: ProviderBatch) -> None:
        """Cancel the job; one that is gone (404) or already ended (400, 409) has nothing
        left to stop, which is no error."""
        try:
            await self._client.aio.batches.cancel(name=batch.batch_id)
        except genai_errors.APIError as exc:
            if exc.code not in (400, 404, 409):
                raise _unavailable("cancel", exc) from exc
            logger.info("gemini batch %s: nothing to cancel (%s)", batch.batch_id, exc.code)
        except Exception as exc:
            raise _unavailable("cancel", exc) from exc

    async def delete(self, batch: ProviderBatch) -> None:
        try:
            await self._client.aio.batches.delete(name=batch.batch_id)
        except genai_errors.APIError as exc:
            if exc.code != 404:  # already gone: no error
                raise _unavailable("delete", exc) from exc
        except Exception as exc:
            raise _unavailable("delete", exc) from exc


def _unavailable(call: str, exc: Exception) -> BatchAPIUnavailableError:
    code = exc.code if isinstance(exc, genai_errors.APIError) else type(exc).__name__
    return BatchAPIUnavailableError(f"gemini batch {call} failed: {code}")
