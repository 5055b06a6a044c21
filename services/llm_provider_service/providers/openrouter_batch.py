"""OpenRouter's Batch API (beta) as a `BatchAPI`, through the openai SDK's low-level calls.

`POST {base}/batches` with `{"endpoint", "model", "requests": [{"custom_id", "body"}]}`:
`endpoint` and `model` are written before `requests` (OpenRouter stream-parses the body and
refuses it otherwise; the SDK keeps a dict's key order). `BATCHES_PATH` is relative to the
OpenRouter base URL (`OPENROUTER_BASE_URL`: `…/api/v1` today, `…/api/beta` in older docs).
Each request's body is the realtime adapter's own (`OpenRouterProvider.request_for`), and
each result row, inline in the completed batch, is read by the realtime reading code
(`openai_batch_rows.py`); token usage is per row (the cost OpenRouter reports is only
batch-wide). There is no cancel call, and a batch can be deleted only once it is terminal.
The create is sent once (`max_retries=0`); reads may use the SDK's retries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import openai

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import (
    BatchCaps,
    BatchEntry,
    BatchPoll,
    BatchRow,
    BatchState,
    ProviderBatch,
)
from services.llm_provider_service.providers.openai_batch_errors import (
    SDK_FAILURES,
    create_failure,
    is_status,
    unavailable,
)
from services.llm_provider_service.providers.openai_batch_rows import row_from_object
from services.llm_provider_service.providers.openrouter_provider import OpenRouterProvider

logger = logging.getLogger(__name__)

BATCHES_PATH = "/batches"
ENDPOINT = "/v1/chat/completions"
MAX_ITEMS = 5_000
MAX_BYTES = 200 * 1024 * 1024
LIST_PAGE = 100
RETRIEVE_AT_MOST = 3
FIND_BEFORE = timedelta(seconds=60)
FIND_AFTER = timedelta(minutes=5)
_CAPACITY_WORDS = ("rate limit", "rate_limit", "capacity", "overloaded", "quota", "429")

_STATES = {
    "validating": BatchState.RUNNING,
    "in_progress": BatchState.RUNNING,
    "finalizing": BatchState.RUNNING,
    "cancelling": BatchState.RUNNING,
    "completed": BatchState.ENDED,
    "failed": BatchState.FAILED,
    # OpenRouter returns results only for a completed batch.
    "expired": BatchState.EXPIRED,
    "cancelled": BatchState.CANCELLED,
}


class OpenRouterBatchAPI:
    """`BatchAPI` over OpenRouter's `/batches`. `client` points at the OpenRouter base URL
    (any retry setting: the create is sent with `max_retries=0`)."""

    def __init__(
        self, client: openai.AsyncOpenAI, realtime: OpenRouterProvider, *, max_items: int
    ) -> None:
        self._once = client.with_options(max_retries=0)
        self._reads = client.with_options(max_retries=2)
        self._realtime = realtime
        self._caps = BatchCaps(min(MAX_ITEMS, max_items), MAX_BYTES * 9 // 10)

    @property
    def provider(self) -> LLMProviderType:
        return LLMProviderType.OPENROUTER

    @property
    def caps(self) -> BatchCaps:
        return self._caps

    def model_for(self, overrides: LLMConfigOverrides) -> str:
        return overrides.model_override or self._realtime.default_model

    def supports(self, model: str) -> bool:
        """OpenRouter does not publish which models its Batch API serves; every model is
        tried, and one it refuses comes back as a refused create."""
        return bool(model)

    def entry_bytes(self, entry: BatchEntry) -> int:
        text = json.dumps(self._request(entry), ensure_ascii=False, separators=(",", ":"))
        return len(text.encode()) + 1

    def _request(self, entry: BatchEntry) -> dict[str, object]:
        body = self._realtime.request_for(entry.prompt, entry.overrides).wire_body()
        return {"custom_id": entry.custom_id, "body": body}

    async def create(self, tag: str, model: str, entries: Sequence[BatchEntry]) -> ProviderBatch:
        # Key order matters: endpoint and model before requests (see the module docstring).
        body = {
            "endpoint": ENDPOINT,
            "model": model,
            "requests": [self._request(entry) for entry in entries],
        }
        try:
            batch = await self._once.post(BATCHES_PATH, cast_to=object, body=body)
        except SDK_FAILURES as exc:
            raise create_failure(self.provider, exc) from exc
        if not isinstance(batch, Mapping) or not isinstance(batch.get("id"), str):
            raise create_failure(self.provider, ValueError("the answer names no batch"))
        return self._provider_batch(batch, model, len(entries))

    def _provider_batch(
        self, batch: Mapping[str, Any], model: str, item_count: int
    ) -> ProviderBatch:
        created = _time(batch.get("created_at")) or datetime.now(UTC)
        return ProviderBatch(self.provider, str(batch["id"]), model, created, item_count)

    async def find(
        self,
        tag: str,
        model: str,
        item_count: int,
        since: datetime,
        exclude: frozenset[str] = frozenset(),
    ) -> ProviderBatch | None:
        """By model, entry count and creation time: OpenRouter keeps no tag."""
        async for batch in self._listed(since - FIND_BEFORE):
            created = _time(batch.get("created_at"))
            counts = batch.get("request_counts")
            total = counts.get("total") if isinstance(counts, Mapping) else None
            if (
                batch.get("model") == model
                and total == item_count
                and str(batch.get("id")) not in exclude
                and created is not None
                and since - FIND_BEFORE <= created <= since + FIND_AFTER
            ):
                return self._provider_batch(batch, model, item_count)
        return None

    async def _listed(self, oldest: datetime) -> AsyncIterator[Mapping[str, Any]]:
        """The list, newest first, down to batches created at `oldest`."""
        params: dict[str, object] = {"limit": LIST_PAGE}
        while True:
            try:
                page = await self._reads.get(
                    BATCHES_PATH, cast_to=object, options={"params": params}
                )
            except SDK_FAILURES as exc:
                raise unavailable(self.provider, exc, "list") from exc
            data = page.get("data") if isinstance(page, Mapping) else None
            batches = [b for b in data if isinstance(b, Mapping)] if isinstance(data, list) else []
            for batch in batches:
                created = _time(batch.get("created_at"))
                if created is not None and created < oldest:
                    return
                yield batch
            if not batches or not (isinstance(page, Mapping) and page.get("has_more")):
                return
            params = {"limit": LIST_PAGE, "after": batches[-1].get("id")}

    async def _retrieve(self, batch_id: str) -> Mapping[str, Any]:
        try:
            batch = await self._reads.get(f"{BATCHES_PATH}/{batch_id}", cast_to=object)
        except SDK_FAILURES as exc:
            raise unavailable(self.provider, exc, "retrieve") from exc
        if not isinstance(batch, Mapping):
            raise unavailable(self.provider, ValueError("not a batch object"), "retrieve")
        return batch

    async def poll(self, batches: Sequence[ProviderBatch]) -> dict[str, BatchPoll]:
        wanted = {batch.batch_id for batch in batches}
        seen: dict[str, Mapping[str, Any]] = {}
        if len(wanted) > RETRIEVE_AT_MOST:
            oldest = min(batch.created_at for batch in batches) - FIND_BEFORE
            async for listed in self._listed(oldest):
                if listed.get("id") in wanted:
                    seen[str(listed["id"])] = listed
                    if len(seen) == len(wanted):
                        break
        for batch_id in sorted(wanted - seen.keys()):
            try:
                seen[batch_id] = await self._retrieve(batch_id)
            except Exception as exc:
                if not seen:
                    raise
                logger.warning("openrouter batch %s not polled: %s", batch_id, exc)
        return {batch_id: poll_of(batch) for batch_id, batch in seen.items()}

    async def rows(self, batch: ProviderBatch) -> AsyncIterator[BatchRow]:
        current = await self._retrieve(batch.batch_id)
        results = current.get("results")
        for item in results if isinstance(results, list) else []:
            if (row := row_from_object(self.provider, item, batch.model)) is not None:
                yield row

    async def cancel(self, batch: ProviderBatch) -> None:
        """OpenRouter has no cancel call: the batch runs out, then `delete` purges it."""

    async def delete(self, batch: ProviderBatch) -> None:
        """Purges the batch's artifacts; OpenRouter refuses (409) until it is terminal,
        which is `BatchAPIUnavailableError` (try again later)."""
        try:
            await self._reads.delete(f"{BATCHES_PATH}/{batch.batch_id}", cast_to=object)
        except SDK_FAILURES as exc:
            if not is_status(exc, 404):
                raise unavailable(self.provider, exc, "delete") from exc


def poll_of(batch: Mapping[str, Any]) -> BatchPoll:
    """One look at an OpenRouter batch object."""
    status = str(batch.get("status"))
    state = _STATES.get(status, BatchState.RUNNING)
    if state is not BatchState.FAILED:
        return BatchPoll(state, status)
    error = batch.get("error")
    message = error.get("message") if isinstance(error, Mapping) else error
    text = str(message or "failed")[:500]
    retryable = any(word in text.lower() for word in _CAPACITY_WORDS)
    return BatchPoll(state, status, error=text, retryable=retryable)


def _time(value: object) -> datetime | None:
    """A creation time given as Unix seconds or as an ISO 8601 text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None
