"""OpenAI's Batch API (files + batches, `/v1/chat/completions`) as a `BatchAPI`.

A batch is one JSONL input file, one model, uploaded with `purpose="batch"` and an
`expires_after` of `FILE_TTL_SECONDS`, then created with `metadata={"spill_id": tag}` (what
`find` matches) and the same `output_expires_after`. Each line's body is the realtime
adapter's own request (`OpenAIProvider.request_for(...).wire_body()`), strict json_schema
included; each result row is read by the realtime reading code (`openai_batch_rows.py`).
The upload and the create are sent once (`max_retries=0`): a retried create could make a
second paid batch. Reads may use the SDK's retries. `documentation/batch.md` ("## OpenAI")
has the outcome table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import openai
from openai.types import Batch, batch_create_params, file_create_params
from openai.types.batch_error import BatchError

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import (
    BatchCaps,
    BatchCreateRefusedError,
    BatchEntry,
    BatchPoll,
    BatchRow,
    BatchState,
    ProviderBatch,
)
from services.llm_provider_service.errors import ProviderBadRequestError, ProviderError
from services.llm_provider_service.providers.openai_batch_errors import (
    SDK_FAILURES,
    create_failure,
    is_status,
    refused,
    unavailable,
)
from services.llm_provider_service.providers.openai_batch_rows import row_from_line
from services.llm_provider_service.providers.openai_provider import OpenAIProvider

logger = logging.getLogger(__name__)

ENDPOINT: Final = "/v1/chat/completions"
MAX_ITEMS = 50_000
MAX_BYTES = 200 * 1024 * 1024
FILE_TTL_SECONDS = 3 * 24 * 3600
"""How long OpenAI keeps the input, output and error files if our delete never comes."""
LIST_PAGE = 100
RETRIEVE_AT_MOST = 3
"""Polls of up to this many batches retrieve each; more read pages of the list."""
FIND_BEFORE = timedelta(seconds=60)
CAPACITY_CODES = frozenset(
    {"token_limit_exceeded", "rate_limit_exceeded", "request_limit_exceeded", "server_error"}
)
"""Batch-level failure codes that mean OpenAI's capacity, not the batch's content."""

_STATES = {
    "validating": BatchState.RUNNING,
    "in_progress": BatchState.RUNNING,
    "finalizing": BatchState.RUNNING,
    "cancelling": BatchState.RUNNING,
    "completed": BatchState.ENDED,
    # Expired and cancelled batches return what they finished in the output file, and the
    # rest as `batch_expired` / cancelled rows in the error file: rows to read.
    "expired": BatchState.ENDED,
    "cancelled": BatchState.ENDED,
    "failed": BatchState.FAILED,
}


class OpenAIBatchAPI:
    """`BatchAPI` over OpenAI files + batches. `client` is the SDK client (any retry
    setting: the upload and the create are sent with `max_retries=0`); `realtime` builds
    each entry's request as the realtime call would."""

    def __init__(
        self, client: openai.AsyncOpenAI, realtime: OpenAIProvider, *, max_items: int
    ) -> None:
        self._once = client.with_options(max_retries=0)
        self._reads = client.with_options(max_retries=2)
        self._realtime = realtime
        self._caps = BatchCaps(min(MAX_ITEMS, max_items), MAX_BYTES * 9 // 10)

    @property
    def provider(self) -> LLMProviderType:
        return LLMProviderType.OPENAI

    @property
    def caps(self) -> BatchCaps:
        return self._caps

    def model_for(self, overrides: LLMConfigOverrides) -> str:
        return overrides.model_override or self._realtime.default_model

    def supports(self, model: str) -> bool:
        """Every chat-completions model is sold through the Batch API."""
        return bool(model)

    def entry_bytes(self, entry: BatchEntry) -> int:
        return len(self._line(entry)) + 1

    def _line(self, entry: BatchEntry) -> bytes:
        body = self._realtime.request_for(entry.prompt, entry.overrides).wire_body()
        line = {"custom_id": entry.custom_id, "method": "POST", "url": ENDPOINT, "body": body}
        return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode()

    async def create(self, tag: str, model: str, entries: Sequence[BatchEntry]) -> ProviderBatch:
        data = b"\n".join(self._line(entry) for entry in entries) + b"\n"
        expires: file_create_params.ExpiresAfter = {
            "anchor": "created_at",
            "seconds": FILE_TTL_SECONDS,
        }
        output_expires: batch_create_params.OutputExpiresAfter = {
            "anchor": "created_at",
            "seconds": FILE_TTL_SECONDS,
        }
        try:
            upload = await self._once.files.create(
                file=(f"spill-{tag}.jsonl", data, "application/jsonl"),
                purpose="batch",
                expires_after=expires,
            )
        except SDK_FAILURES as exc:  # no input file, so certainly no batch
            raise refused(self.provider, exc, "input upload") from exc
        try:
            batch = await self._once.batches.create(
                input_file_id=upload.id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={"spill_id": tag},
                output_expires_after=output_expires,
            )
        except SDK_FAILURES as exc:
            failure = create_failure(self.provider, exc)
            if isinstance(failure, BatchCreateRefusedError):
                await self._forget_file(upload.id)  # no batch will ever read it
            raise failure from exc
        return self._provider_batch(batch, model, len(entries))

    def _provider_batch(self, batch: Batch, model: str, item_count: int) -> ProviderBatch:
        return ProviderBatch(
            self.provider,
            batch.id,
            model,
            datetime.fromtimestamp(batch.created_at, UTC),
            item_count,
            files=(batch.input_file_id,),
        )

    async def find(
        self,
        tag: str,
        model: str,
        item_count: int,
        since: datetime,
        exclude: frozenset[str] = frozenset(),
    ) -> ProviderBatch | None:
        async for batch in self._listed(since - FIND_BEFORE):
            if (batch.metadata or {}).get("spill_id") == tag and batch.id not in exclude:
                return self._provider_batch(batch, model, item_count)
        return None

    async def _listed(self, oldest: datetime) -> AsyncIterator[Batch]:
        """The list, newest first, down to batches created at `oldest`."""
        after: str | None = None
        while True:
            try:
                page = await self._reads.batches.list(limit=LIST_PAGE, after=after or openai.omit)
            except SDK_FAILURES as exc:
                raise unavailable(self.provider, exc, "list") from exc
            for batch in page.data:
                if datetime.fromtimestamp(batch.created_at, UTC) < oldest:
                    return
                yield batch
            if not page.has_more or not page.data:
                return
            after = page.data[-1].id

    async def poll(self, batches: Sequence[ProviderBatch]) -> dict[str, BatchPoll]:
        wanted = {batch.batch_id: batch for batch in batches}
        seen: dict[str, Batch] = {}
        if len(wanted) > RETRIEVE_AT_MOST:
            oldest = min(batch.created_at for batch in batches) - FIND_BEFORE
            async for listed in self._listed(oldest):
                if listed.id in wanted:
                    seen[listed.id] = listed
                    if len(seen) == len(wanted):
                        break
        for batch_id in wanted.keys() - seen.keys():
            try:
                seen[batch_id] = await self._reads.batches.retrieve(batch_id)
            except SDK_FAILURES as exc:
                if not seen:
                    raise unavailable(self.provider, exc, "retrieve") from exc
                logger.warning("openai batch %s not polled: %s", batch_id, exc)
        return {batch_id: await self._poll_of(batch) for batch_id, batch in seen.items()}

    async def _poll_of(self, batch: Batch) -> BatchPoll:
        state = _STATES.get(batch.status, BatchState.RUNNING)
        if state is not BatchState.FAILED:
            return BatchPoll(state, batch.status)
        errors = list(batch.errors.data or []) if batch.errors else []
        codes = {error.code for error in errors if error.code}
        text = "; ".join(f"{e.code}: {e.message}" for e in errors)[:500] or "failed"
        lined = [error for error in errors if error.line is not None]
        entry_errors = await self._entry_errors(batch, lined) if lined else {}
        return BatchPoll(
            state,
            batch.status,
            error=text,
            retryable=bool(codes & CAPACITY_CODES) and not entry_errors,
            entry_errors=entry_errors,
        )

    async def _entry_errors(
        self, batch: Batch, lined: list[BatchError]
    ) -> dict[str, ProviderError]:
        """Each validation error with a line number, keyed by that line's custom id
        (lines counted from 1, ⚠ research §9)."""
        try:
            content = await self._reads.files.content(batch.input_file_id)
        except SDK_FAILURES as exc:
            raise unavailable(self.provider, exc, "input read") from exc
        ids = [_custom_id(line) for line in content.text.splitlines()]
        found: dict[str, ProviderError] = {}
        for error in lined:
            line = error.line
            custom_id = ids[line - 1] if line is not None and 1 <= line <= len(ids) else None
            if custom_id:
                message = f"openai refused batch line {line}: {error.message or error.code}"
                found[custom_id] = ProviderBadRequestError(
                    self.provider, message[:500], status=400, details={"line": line}
                )
        return found

    async def rows(self, batch: ProviderBatch) -> AsyncIterator[BatchRow]:
        try:
            current = await self._reads.batches.retrieve(batch.batch_id)
        except SDK_FAILURES as exc:
            raise unavailable(self.provider, exc, "retrieve") from exc
        for file_id in (current.output_file_id, current.error_file_id):
            if not file_id:
                continue
            async for row in self._file_rows(file_id, batch.model):
                yield row

    async def _file_rows(self, file_id: str, model: str) -> AsyncIterator[BatchRow]:
        try:
            async with self._reads.files.with_streaming_response.content(file_id) as response:
                async for line in response.iter_lines():
                    if line.strip() and (row := row_from_line(self.provider, line, model)):
                        yield row
        except SDK_FAILURES as exc:
            raise unavailable(self.provider, exc, "results read") from exc

    async def _forget_file(self, file_id: str) -> None:
        try:
            await self._reads.files.delete(file_id)
        except SDK_FAILURES:  # it expires after FILE_TTL_SECONDS anyway
            logger.warning("openai input file %s of a refused batch not deleted", file_id)

    async def cancel(self, batch: ProviderBatch) -> None:
        try:
            await self._reads.batches.cancel(batch.batch_id)
        except SDK_FAILURES as exc:
            if is_status(exc, 400, 404, 409):  # already ended or gone: nothing to stop
                return
            raise unavailable(self.provider, exc, "cancel") from exc

    async def delete(self, batch: ProviderBatch) -> None:
        """OpenAI keeps no batch to delete, only its files: input, output and error."""
        files: set[str | None] = set(batch.files)
        try:
            current = await self._reads.batches.retrieve(batch.batch_id)
            files |= {current.input_file_id, current.output_file_id, current.error_file_id}
        except SDK_FAILURES as exc:
            if not is_status(exc, 404):
                raise unavailable(self.provider, exc, "retrieve") from exc
        for file_id in sorted(f for f in files if f):
            try:
                await self._reads.files.delete(file_id)
            except SDK_FAILURES as exc:
                if not is_status(exc, 404):
                    raise unavailable(self.provider, exc, "file delete") from exc


def _custom_id(line: str) -> str | None:
    try:
        value = json.loads(line).get("custom_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
