"""Anthropic Message Batches (`/v1/messages/batches...`) for the fake upstream, whose state
moves only when the test says so.

`fake.anthropic_batches` (an `AnthropicBatches`) answers create, retrieve, list, results,
cancel and delete as the API does (research §7.1). A batch stays `in_progress` (or
`canceling` after a cancel) until the test calls `end(batch_id, outcomes)`: each entry's
outcome comes from that table by custom id (`Outcome`; unnamed entries get `default`, or
`canceled` when the batch was being cancelled), and the results lines are built then, in
shuffled order (never the input order, for two entries or more). A succeeded line's message
is what the realtime fake answers for the same params (`anthropic_wire.answer`), with
`usage.service_tier` "batch"; params the Messages API would refuse become an
`invalid_request_error` line, as Anthropic validates params only while processing.

Faults: `fail_create(kind)` for the next create (`CreateFault`: a 500 or a dropped connection
AFTER the batch was made, or a refusal 429 with `retry-after`, 400 or 413 without one);
`forget(batch_id)` (the vendor lost it: 404); `hold(endpoint)` keeps that endpoint's
answers waiting (a create after making its batch) until `release(endpoint)`, and
`wait_held(endpoint)` waits until a request is being held. Every request is recorded
(`requests`, `calls(endpoint)`). `reset()` (from `FakeUpstream.reset`) forgets it all.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import parse_qs

from devtools.asgi import request_line
from tests.support.fake_vendors import wire
from tests.support.fake_vendors.anthropic_batch_lines import FakeBatch, Outcome, end_batch
from tests.support.fake_vendors.asgi import Hang
from tests.support.fake_vendors.wire import Answers, RecordedRequest, Reply

Endpoint = Literal["create", "retrieve", "list", "results", "cancel", "delete"]
CreateFault = Literal[
    "error_after_create", "drop_after_create", "refuse_429", "refuse_400", "refuse_413"
]

_PATH: Final = re.compile(r"^/v1/messages/batches(?:/([^/]+)(?:/(results|cancel))?)?$")
_CUSTOM_ID: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
HOLD_STEP_SECONDS: Final = 0.02


@dataclass
class _Hold:
    released: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)


class AnthropicBatches:
    """The Message Batches state of the fake (see the module docstring). Its test-side
    methods may be called from any thread."""

    def __init__(self, answers: Answers, lock: threading.RLock) -> None:
        self._answers = answers
        self._lock = lock
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.retry_after = "7"
            """The `retry-after` header of a `refuse_429` create."""
            self.max_bytes = 256_000_000
            """A create body larger than this is refused with 413 (Anthropic's 256 MB)."""
            self._batches: dict[str, FakeBatch] = {}
            self._records: list[tuple[Endpoint, RecordedRequest]] = []
            self._create_faults: list[CreateFault] = []
            holds = getattr(self, "_holds", {})
            for hold in holds.values():
                hold.released.set()  # nothing stays held into the next test
            self._holds: dict[Endpoint, _Hold] = {}

    # ---- what the test sees and says --------------------------------------------------------

    @property
    def ids(self) -> list[str]:
        """Every batch made (and not deleted or forgotten), oldest first."""
        with self._lock:
            return list(self._batches)

    def batch(self, batch_id: str) -> FakeBatch:
        with self._lock:
            return self._batches[batch_id]

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [record for _, record in self._records]

    def calls(self, endpoint: Endpoint) -> list[RecordedRequest]:
        with self._lock:
            return [record for name, record in self._records if name == endpoint]

    def end(
        self,
        batch_id: str,
        outcomes: Mapping[str, Outcome] | None = None,
        *,
        default: Outcome = "succeeded",
    ) -> None:
        """Processing ends: each entry's outcome by custom id, the rest `default` (or
        `canceled` if a cancel was asked for)."""
        with self._lock:
            batch = self._batches[batch_id]
            if batch.status == "canceling" and default == "succeeded":
                default = "canceled"
            end_batch(self._answers, batch, outcomes or {}, default)
            batch.status, batch.ended_at = "ended", datetime.now(UTC)

    def expire(self, batch_id: str) -> None:
        """The 24 hours pass: every entry not run is `expired`."""
        self.end(batch_id, default="expired")

    def forget(self, batch_id: str) -> None:
        """The vendor no longer knows the batch (every call about it is a 404)."""
        with self._lock:
            del self._batches[batch_id]

    def backdate(self, batch_id: str, seconds: float) -> None:
        with self._lock:
            self._batches[batch_id].created_at -= timedelta(seconds=seconds)

    def fail_create(self, kind: CreateFault) -> None:
        """The next create fails as `kind` (queued: call again for the one after)."""
        with self._lock:
            self._create_faults.append(kind)

    def hold(self, endpoint: Endpoint) -> None:
        with self._lock:
            self._holds[endpoint] = _Hold()

    def release(self, endpoint: Endpoint) -> None:
        with self._lock:
            hold = self._holds.pop(endpoint, None)
        if hold is not None:
            hold.released.set()

    def wait_held(self, endpoint: Endpoint, timeout: float = 10.0) -> bool:
        """True once a request to `endpoint` is being held (False after `timeout`)."""
        with self._lock:
            hold = self._holds[endpoint]
        return hold.arrived.wait(timeout)

    # ---- one request (on the server's thread) ------------------------------------------------

    @staticmethod
    def owns(scope: Mapping[str, Any]) -> bool:
        return bool(_PATH.match(scope.get("path", "")))

    async def handle(self, scope: dict[str, Any], body: bytes, hang: Hang) -> Reply | None:
        method, path, query, headers = request_line(scope)
        match = _PATH.match(path)
        assert match is not None
        batch_id, action = match.group(1), match.group(2)
        endpoint = _endpoint(method, batch_id, action)
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError:
            payload = None
        record = RecordedRequest("anthropic", method, path, query, headers, body, payload, None)
        with self._lock:
            self._records.append((endpoint, record))
            fault = (
                self._create_faults.pop(0) if endpoint == "create" and self._create_faults else None
            )
            reply = self._answer(endpoint, batch_id, payload, body, query, headers, fault)
            hold = self._holds.get(endpoint)
        if hold is not None:
            hold.arrived.set()
            while not hold.released.is_set():
                if not await hang(HOLD_STEP_SECONDS):
                    return None  # the client left (or the server stops): nothing to send
        return None if fault == "drop_after_create" else reply

    def _answer(
        self,
        endpoint: Endpoint,
        batch_id: str | None,
        payload: Any,
        body: bytes,
        query: str,
        headers: Mapping[str, str],
        fault: CreateFault | None,
    ) -> Reply:
        host = headers.get("host", "127.0.0.1")
        if endpoint == "create":
            return self._create(payload, body, host, fault)
        if endpoint == "list":
            return self._list(query, host)
        batch = self._batches.get(batch_id or "")
        if batch is None:
            return _error(404, "not_found_error", f"No message batch {batch_id!r}.")
        if endpoint == "retrieve":
            return wire.json_reply(200, batch.json(host))
        if endpoint == "results":
            if batch.status != "ended":
                return _error(400, "invalid_request_error", "The batch has not ended.")
            jsonl = "".join(json.dumps(line) + "\n" for line in batch.lines).encode()
            return Reply(200, jsonl, (), "application/binary")
        if endpoint == "cancel":
            if batch.status == "ended":
                return _error(400, "invalid_request_error", "The batch has already ended.")
            batch.status = "canceling"
            batch.cancel_initiated_at = batch.cancel_initiated_at or datetime.now(UTC)
            return wire.json_reply(200, batch.json(host))
        if batch.status != "ended":  # delete
            return _error(400, "invalid_request_error", "A batch can be deleted once ended.")
        del self._batches[batch.id]
        return wire.json_reply(200, {"id": batch.id, "type": "message_batch_deleted"})

    def _create(self, payload: Any, body: bytes, host: str, fault: CreateFault | None) -> Reply:
        if fault == "refuse_429":
            headers = (("retry-after", self.retry_after),)
            return _error(429, "rate_limit_error", "Too many batch requests.", headers)
        if fault == "refuse_400":
            return _error(400, "invalid_request_error", "Invalid batch.")
        if fault == "refuse_413" or len(body) > self.max_bytes:
            return _error(413, "request_too_large", "Request exceeds the maximum size.")
        problem = _create_problem(payload)
        if problem:
            return _error(400, "invalid_request_error", problem)
        batch = FakeBatch(f"msgbatch_{wire.hex_id()}", payload["requests"], datetime.now(UTC))
        self._batches[batch.id] = batch
        if fault == "error_after_create":
            return _error(500, "api_error", "Internal server error.")
        return wire.json_reply(200, batch.json(host))

    def _list(self, query: str, host: str) -> Reply:
        params = parse_qs(query)
        limit = int(params.get("limit", ["20"])[0])
        by_age = sorted(self._batches.values(), key=lambda batch: batch.created_at)
        newest = list(reversed(by_age))  # newest first; ties: the later made first
        after = params.get("after_id", [None])[0]
        if after is not None:
            ids = [batch.id for batch in newest]
            newest = newest[ids.index(after) + 1 :] if after in ids else []
        page = newest[:limit]
        return wire.json_reply(
            200,
            {
                "data": [batch.json(host) for batch in page],
                "has_more": len(newest) > limit,
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
            },
        )


def _endpoint(method: str, batch_id: str | None, action: str | None) -> Endpoint:
    if batch_id is None:
        return "create" if method == "POST" else "list"
    if action == "results":
        return "results"
    if action == "cancel":
        return "cancel"
    return "delete" if method == "DELETE" else "retrieve"


def _create_problem(payload: Any) -> str | None:
    requests = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(requests, list) or not requests:
        return "requests: Field required"
    seen: set[str] = set()
    for index, request in enumerate(requests):
        custom_id = request.get("custom_id") if isinstance(request, dict) else None
        if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
            return f"requests.{index}.custom_id: String should match pattern"
        if custom_id in seen:
            return f"requests.{index}.custom_id: duplicate custom_id {custom_id!r}"
        seen.add(custom_id)
        params = request.get("params")
        if not isinstance(params, dict):
            return f"requests.{index}.params: Field required"
        max_tokens = params.get("max_tokens")
        if isinstance(max_tokens, int) and max_tokens < 1:
            return f"requests.{index}.params.max_tokens: Input should be greater than 0"
    return None


def _error(
    status: int, kind: str, message: str, headers: tuple[tuple[str, str], ...] = ()
) -> Reply:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return wire.json_reply(status, body, (*headers, ("request-id", f"req_{wire.hex_id()}")))
