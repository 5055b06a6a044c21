"""What the fake OpenAI and OpenRouter Batch APIs share: the test's switches and the rows.

`BatchControls` is driven from the test thread: per-entry outcomes (`OUTCOMES`), create
faults (`refuse_create`, `break_create`), and `hold(op)` / `release(op)`, which keep every
request of that operation waiting (the client sees nothing) until released; `arrived(op)`
is set when one is held, so a test can wait for it (or SIGKILL the service meanwhile).
Every request is recorded (`requests`, `calls(op)`). `chat_rows` makes the result rows of a
batch, in the OpenAI batch output shape (OpenRouter uses the same), in shuffled order.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from tests.support.fake_vendors import openai_wire, wire
from tests.support.fake_vendors.asgi import Hang
from tests.support.fake_vendors.wire import Answers, Reply, Vendor

Outcome = Literal[
    "succeeded",  # a chat completion, answered like the realtime endpoint answers
    "errored_final",  # status 400 (fix the request)
    "errored_retryable",  # status 500
    "rate_limited",  # status 429
    "expired",  # never ran: error code batch_expired
    "cancelled",  # never ran: error code batch_cancelled
    "invalid",  # a 200 answer outside the schema
    "refusal",  # a 200 answer whose message is a refusal
    "max_tokens",  # a 200 answer cut off at the token limit
    "missing",  # no row at all
    "duplicate",  # a succeeded row, twice
]
OUTCOMES: Final[tuple[str, ...]] = Outcome.__args__  # type: ignore[attr-defined]
CreateFault = Literal["500_after", "drop_after"]
HOLD_POLL_SECONDS: Final = 0.02


@dataclass(frozen=True)
class BatchRequest:
    """One request to a fake Batch API, as received."""

    op: str
    method: str
    path: str
    query: str
    body: bytes
    json: Any


@dataclass
class BatchControls:
    lock: threading.RLock
    requests: list[BatchRequest] = field(default_factory=list)
    _refusal: tuple[int, str | None, int] | None = None
    _break: CreateFault | None = None
    _held: set[str] = field(default_factory=set)
    _arrived: dict[str, threading.Event] = field(default_factory=dict)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self._refusal = None
            self._break = None
            self._held.clear()
            for event in self._arrived.values():
                event.clear()

    def calls(self, op: str) -> list[BatchRequest]:
        with self.lock:
            return [r for r in self.requests if r.op == op]

    def refuse_create(self, status: int, *, retry_after: str | None = None, times: int = 1) -> None:
        """The next `times` creates are refused with `status` (no batch is made)."""
        with self.lock:
            self._refusal = (status, retry_after, times)

    def break_create(self, kind: CreateFault) -> None:
        """The next create makes its batch, then answers 500 or drops the connection."""
        with self.lock:
            self._break = kind

    def hold(self, op: str) -> None:
        with self.lock:
            self._held.add(op)
            self._arrived.setdefault(op, threading.Event()).clear()

    def release(self, op: str) -> None:
        with self.lock:
            self._held.discard(op)

    def arrived(self, op: str) -> threading.Event:
        """Set once a request of `op` is being held."""
        with self.lock:
            return self._arrived.setdefault(op, threading.Event())

    def take_refusal(self) -> tuple[int, str | None] | None:
        with self.lock:
            if self._refusal is None:
                return None
            status, retry_after, times = self._refusal
            self._refusal = (status, retry_after, times - 1) if times > 1 else None
            return status, retry_after

    def take_break(self) -> CreateFault | None:
        with self.lock:
            kind, self._break = self._break, None
            return kind

    def record(self, op: str, scope: dict[str, Any], body: bytes) -> None:
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError:
            payload = None
        query = scope.get("query_string", b"").decode()
        request = BatchRequest(op, scope["method"], scope["path"], query, body, payload)
        with self.lock:
            self.requests.append(request)

    async def wait_if_held(self, op: str, hang: Hang) -> bool:
        """Keep the request waiting while `op` is held; False if the client or server left."""
        while True:
            with self.lock:
                if op not in self._held:
                    return True
                self._arrived.setdefault(op, threading.Event()).set()
            if not await hang(HOLD_POLL_SECONDS):
                return False


def chat_rows(
    answers: Answers,
    vendor: Vendor,
    entries: list[tuple[str, dict[str, Any]]],
    outcomes: Mapping[str, str],
    default: str,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """The rows of a batch's `entries` (custom id, request body), in shuffled order; each
    entry's outcome from `outcomes`, else `default`."""
    rows: list[dict[str, Any]] = []
    for custom_id, body in entries:
        outcome = outcomes.get(custom_id, default)
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; expected one of {OUTCOMES}")
        if outcome == "missing":
            continue
        row = _ROWS[outcome](answers, vendor, body)
        row = {"id": f"batch_req_{wire.hex_id()}", "custom_id": custom_id, **row}
        rows.extend([row, row] if outcome == "duplicate" else [row])
    rng.shuffle(rows)
    return rows


def _answered(fault: Any = None, refusal: bool = False) -> Callable[..., dict[str, Any]]:
    def row(answers: Answers, vendor: Vendor, body: dict[str, Any]) -> dict[str, Any]:
        reply = openai_wire.answer(answers, vendor, "", body, fault)
        answer = json.loads(reply.body)
        if refusal and reply.status == 200:
            message = answer["choices"][0]["message"]
            message.update(content=None, refusal="I can't help with grading this.")
        return _response(reply, answer)

    return row


def _status(kind: str) -> Callable[..., dict[str, Any]]:
    def row(answers: Answers, vendor: Vendor, body: dict[str, Any]) -> dict[str, Any]:
        reply = openai_wire.error(vendor, kind, None, ())
        return _response(reply, json.loads(reply.body))

    return row


def _not_run(code: str) -> Callable[..., dict[str, Any]]:
    message = f"This request could not be executed ({code})."
    return lambda *_: {"response": None, "error": {"code": code, "message": message}}


def _response(reply: Reply, body: Any) -> dict[str, Any]:
    request_id = f"req_{wire.hex_id()}"
    response = {"status_code": reply.status, "request_id": request_id, "body": body}
    return {"response": response, "error": None}


_ROWS: Final[dict[str, Callable[..., dict[str, Any]]]] = {
    "succeeded": _answered(),
    "duplicate": _answered(),
    "invalid": _answered("schema_violation"),
    "max_tokens": _answered("max_tokens"),
    "refusal": _answered(refusal=True),
    "errored_final": _status("bad_request"),
    "errored_retryable": _status("server_error"),
    "rate_limited": _status("rate_limit"),
    "expired": _not_run("batch_expired"),
    "cancelled": _not_run("batch_cancelled"),
}
