"""`AnthropicBatchAPI`: the `BatchAPI` port on Anthropic's Message Batches, through the
official SDK's async client (`client.messages.batches`).

Documented choices (`documentation/batch.md`, "## Anthropic"):

- Each entry's `params` is the realtime call's request for the same prompt and overrides
  (`plan_request` then `batch_params`: the forced `comparison_result` tool, the same token
  budgets, thinking and cache breakpoints); each row is read by the realtime reader
  (`read_judgement`) in `anthropic_batch_rows.py`.
- `create` is one HTTP request (`with_options(max_retries=0)`): the SDK would retry a 5xx
  or a dropped connection, and a retried create is a second paid batch. Reads, cancel and
  delete keep the client's retries.
- Anthropic keeps no tag on a batch, and a batch carries no model (each entry names its
  own), so `find` matches an entry count and a creation time from `since - 60 s` to
  `since + 5 min`; of several such batches, the oldest.
- `poll` retrieves each batch when at most `RETRIEVE_AT_MOST` are asked for, else pages of
  the list (1,000 a page, newest first) down to the oldest batch asked for, and retrieves
  only those the list did not show (`RETRIEVE_AT_MOST` of them at most). A 404 is FAILED,
  retryable: the vendor no longer has the batch, its entries were never judged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, cast

import anthropic
import httpx2
from anthropic.types.messages.batch_create_params import Request

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
    ProviderBatch,
)
from services.llm_provider_service.providers.anthropic_batch_rows import gone_poll, poll_of, row_of
from services.llm_provider_service.providers.anthropic_request import batch_params, plan_request
from services.llm_provider_service.providers.http_errors import retry_after_seconds

logger = logging.getLogger(__name__)

_PROVIDER = LLMProviderType.ANTHROPIC
MAX_ITEMS: Final = 100_000  # Anthropic's cap on requests per batch
MAX_BYTES: Final = 256_000_000 * 9 // 10  # 90 % of the 256 MB cap (decimal MB: the smaller)
RETRIEVE_AT_MOST: Final = 3
LIST_PAGE: Final = 1000  # the most the list gives per page
FIND_PAGE: Final = 100
FIND_BEFORE: Final = timedelta(seconds=60)
FIND_AFTER: Final = timedelta(minutes=5)


class AnthropicBatchAPI:
    """A `BatchAPI` for Anthropic Message Batches (see the module docstring)."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        *,
        default_model: str,
        prompt_caching: bool,
        max_items: int,
    ) -> None:
        self._client = client
        self._batches = client.messages.batches
        self._default_model = default_model
        self._prompt_caching = prompt_caching
        self._caps = BatchCaps(max_items=min(MAX_ITEMS, max_items), max_bytes=MAX_BYTES)

    @property
    def provider(self) -> LLMProviderType:
        return _PROVIDER

    @property
    def caps(self) -> BatchCaps:
        return self._caps

    def model_for(self, overrides: LLMConfigOverrides) -> str:
        return overrides.model_override or self._default_model

    def supports(self, model: str) -> bool:
        """Every Messages API model is sold through Message Batches."""
        return bool(model)

    def entry_bytes(self, entry: BatchEntry) -> int:
        """The entry's JSON as sent, plus its separating comma."""
        return len(json.dumps(self._request(entry), separators=(",", ":")).encode()) + 1

    def _request(self, entry: BatchEntry) -> Request:
        call = plan_request(
            entry.prompt,
            entry.overrides,
            default_model=self._default_model,
            prompt_caching=self._prompt_caching,
        )
        return cast(Request, {"custom_id": entry.custom_id, "params": batch_params(call)})

    async def create(self, tag: str, model: str, entries: Sequence[BatchEntry]) -> ProviderBatch:
        requests = [self._request(entry) for entry in entries]
        try:
            batch = await self._client.with_options(max_retries=0).messages.batches.create(
                requests=requests
            )
            batch_id, created_at = batch.id, batch.created_at
            if not isinstance(batch_id, str) or not isinstance(created_at, datetime):
                raise TypeError("the create answer is not a message batch")
        except anthropic.APIStatusError as exc:
            status = exc.status_code
            text = f"anthropic refused the batch ({status}): {exc.api_message or exc.message}"
            if status == 408 or status >= 500:
                raise BatchCreateAmbiguousError(text[:500]) from exc
            retry_after = retry_after_seconds(exc.response.headers)
            raise BatchCreateRefusedError(
                text[:500], retry_after=retry_after, capacity=status == 429
            ) from exc
        except Exception as exc:  # timeout, dropped connection, an unreadable 200
            raise BatchCreateAmbiguousError(
                f"anthropic batch create may have made a batch: {type(exc).__name__}"
            ) from exc
        logger.info("anthropic batch %s created for spill %s (%d)", batch_id, tag, len(entries))
        return ProviderBatch(_PROVIDER, batch_id, model, created_at, len(entries))

    async def find(
        self,
        tag: str,
        model: str,
        item_count: int,
        since: datetime,
        exclude: frozenset[str] = frozenset(),
    ) -> ProviderBatch | None:
        earliest, latest = since - FIND_BEFORE, since + FIND_AFTER
        found: Any = None
        try:
            page = await self._batches.list(limit=FIND_PAGE)
            while True:
                for batch in page.data:  # newest first
                    if batch.created_at < earliest:
                        return _found(found, model, item_count)
                    if (
                        batch.created_at <= latest
                        and _count(batch) == item_count
                        and batch.id not in exclude
                    ):
                        found = batch  # keep going: the oldest match wins
                if not page.has_next_page():
                    return _found(found, model, item_count)
                page = await page.get_next_page()
        except anthropic.AnthropicError as exc:
            raise BatchAPIUnavailableError(f"anthropic batch list failed: {exc}"[:500]) from exc

    async def poll(self, batches: Sequence[ProviderBatch]) -> dict[str, BatchPoll]:
        wanted = {batch.batch_id: batch for batch in batches}
        seen: dict[str, BatchPoll] = {}
        if len(wanted) > RETRIEVE_AT_MOST:
            oldest = min(batch.created_at for batch in batches)
            try:
                seen = await self._listed(set(wanted), oldest)
            except anthropic.AnthropicError as exc:
                logger.warning("anthropic batch list failed: %s", exc)
        unseen = [batch_id for batch_id in wanted if batch_id not in seen]
        answered = bool(seen)
        for batch_id in unseen[:RETRIEVE_AT_MOST]:
            try:
                seen[batch_id] = poll_of(await self._batches.retrieve(batch_id))
            except anthropic.NotFoundError:
                seen[batch_id] = gone_poll(batch_id)
            except anthropic.AnthropicError as exc:
                logger.warning("anthropic batch %s retrieve failed: %s", batch_id, exc)
                continue
            answered = True
        if wanted and not answered:
            raise BatchAPIUnavailableError("anthropic answered no batch poll")
        return seen

    async def _listed(self, wanted: set[str], oldest: datetime) -> dict[str, BatchPoll]:
        """The wanted batches the list shows, paging down to the oldest of them."""
        seen: dict[str, BatchPoll] = {}
        page = await self._batches.list(limit=LIST_PAGE)
        while True:
            for batch in page.data:
                if batch.id in wanted:
                    seen[batch.id] = poll_of(batch)
            last = page.data[-1] if page.data else None
            done = len(seen) == len(wanted) or last is None or last.created_at < oldest
            if done or not page.has_next_page():
                return seen
            page = await page.get_next_page()

    async def rows(self, batch: ProviderBatch) -> AsyncIterator[BatchRow]:
        try:
            lines = await self._batches.results(batch.batch_id)
            async for line in lines:
                row = row_of(line, batch.model)
                if row is not None:
                    yield row
        # The body is streamed: a connection cut midway surfaces as httpx2's own error, not
        # the SDK's; ValueError is a line that is not JSON.
        except (anthropic.AnthropicError, httpx2.HTTPError, OSError, ValueError) as exc:
            raise BatchAPIUnavailableError(
                f"anthropic batch {batch.batch_id} results unreadable: {exc}"[:500]
            ) from exc

    async def cancel(self, batch: ProviderBatch) -> None:
        """A batch already ended (409/400) or gone (404) has nothing left to stop."""
        try:
            await self._batches.cancel(batch.batch_id)
        except (anthropic.NotFoundError, anthropic.ConflictError, anthropic.BadRequestError):
            logger.info("anthropic batch %s is not cancellable; nothing to stop", batch.batch_id)
        except anthropic.AnthropicError as exc:
            raise BatchAPIUnavailableError(
                f"anthropic batch {batch.batch_id} cancel failed: {exc}"[:500]
            ) from exc

    async def delete(self, batch: ProviderBatch) -> None:
        """Anthropic refuses (400) to delete a batch before it ended: unavailable, try later."""
        try:
            await self._batches.delete(batch.batch_id)
        except anthropic.NotFoundError:
            return
        except anthropic.AnthropicError as exc:
            raise BatchAPIUnavailableError(
                f"anthropic batch {batch.batch_id} delete failed: {exc}"[:500]
            ) from exc


def _count(batch: Any) -> int:
    counts = batch.request_counts
    return int(
        counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
    )


def _found(batch: Any, model: str, item_count: int) -> ProviderBatch | None:
    if batch is None:
        return None
    return ProviderBatch(_PROVIDER, batch.id, model, batch.created_at, item_count)
