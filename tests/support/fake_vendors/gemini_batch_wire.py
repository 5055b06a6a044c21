"""Gemini batch jobs on the fake upstream (research §7.3), driven by the test.

`POST /{v1,v1beta}/models/{model}:batchGenerateContent` makes a job (PENDING); `GET
/{ver}/batches/{id}`, `GET /{ver}/batches` (pages), `POST /{ver}/batches/{id}:cancel` and
`DELETE /{ver}/batches/{id}` answer as the Developer API does. A job moves only when the test
says: `advance` (PENDING -> RUNNING -> SUCCEEDED), `end(id, outcomes)`, `fail_job`, `expire`.
Each entry's outcome is chosen by its `metadata.key` (`Outcome`); a succeeded entry is
answered by `gemini_wire.answer` exactly as a realtime call with the same request would be.
Faults: `refuse_create` (4xx, optional Retry-After), `create_then("server_error" | "drop")`
(the job is made, then the answer is a 500 or a dropped connection), and `hold(endpoint)`,
which keeps that endpoint's answers waiting until `release(endpoint)`. Every request is
recorded in `requests`.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

from devtools.asgi import request_line
from tests.support.fake_vendors import gemini_wire, wire
from tests.support.fake_vendors.gemini_batch_jobs import Job, now
from tests.support.fake_vendors.wire import Answers, FaultKind, RecordedRequest, Reply

Endpoint = Literal["create", "get", "list", "cancel", "delete"]
# An entry's outcome: an answer as the realtime endpoint gives ("succeeded"), one outside the
# schema, one cut at the token limit; an error 400 (fix the request), 429 or 500; no response
# at all, the response twice, or a response without its metadata.
Outcome = Literal[
    "succeeded", "schema_violation", "max_tokens", "bad_request", "rate_limit", "server_error",
    "missing", "duplicate", "no_key",
]  # fmt: skip
INLINE_LIMIT_BYTES = 20_000_000
_PATH = re.compile(
    r"^/(?:download/)?v1(?:beta)?/(?:models/(?P<model>[^/:]+):batchGenerateContent"
    r"|batches(?:/(?P<id>[^/:]+)(?P<cancel>:cancel)?)?)$"
)
_ERRORS: dict[str, tuple[int, str]] = {
    "bad_request": (400, "INVALID_ARGUMENT"),
    "rate_limit": (429, "RESOURCE_EXHAUSTED"),
    "server_error": (500, "INTERNAL"),
}
_FAULTS: dict[str, FaultKind] = {"schema_violation": "schema_violation", "max_tokens": "max_tokens"}


class GeminiBatches:
    """The fake's Gemini batch jobs; the test thread calls the public methods, the server
    thread `owns` and `serve`. `answers` and `lock` are the server's."""

    def __init__(self, answers: Answers, lock: threading.RLock) -> None:
        self._answers = answers
        self._lock = lock
        self._changed = threading.Condition(lock)
        self.requests: list[RecordedRequest] = []
        self._jobs: dict[str, Job] = {}
        self._refusals: list[tuple[int, str | None]] = []
        self._after_create: list[Literal["server_error", "drop"]] = []
        self._held: set[Endpoint] = set()
        self._waiting: dict[Endpoint, int] = {}

    # ---- the test's controls -------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._jobs.clear()
            self._refusals.clear()
            self._after_create.clear()
            self._held.clear()
            self._changed.notify_all()

    @property
    def jobs(self) -> list[str]:
        """The ids (`batches/...`) of the jobs made and not deleted, oldest first."""
        with self._lock:
            return list(self._jobs)

    def job(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self._jobs[name].wire()

    def calls(self, endpoint: Endpoint) -> list[RecordedRequest]:
        return [r for r in list(self.requests) if _endpoint(r.method, r.path) == endpoint]

    def advance(self, name: str) -> str:
        """PENDING -> RUNNING -> SUCCEEDED (every entry succeeded); the new state."""
        with self._lock:
            job = self._jobs[name]
            if job.state == "BATCH_STATE_PENDING":
                self._set(job, "BATCH_STATE_RUNNING")
            else:
                self.end(name)
            return job.state

    def end(
        self, name: str, outcomes: Mapping[str, Outcome] | None = None, *, shuffle: bool = False
    ) -> None:
        """SUCCEEDED, each entry as `outcomes[key]` says (else succeeded); responses in
        input order as the API promises, or shuffled."""
        with self._lock:
            job = self._jobs[name]
            output: list[dict[str, Any]] = []
            for entry in job.requests:
                key = (entry.get("metadata") or {}).get("key", "")
                output += self._responses(job, entry, (outcomes or {}).get(key, "succeeded"))
            if shuffle:
                random.Random(len(output)).shuffle(output)
            job.output = output
            self._set(job, "BATCH_STATE_SUCCEEDED")

    def fail_job(self, name: str, code: int = 429, message: str = "Enqueued tokens limit") -> None:
        with self._lock:
            self._jobs[name].error = {"code": code, "message": message}
            self._set(self._jobs[name], "BATCH_STATE_FAILED")

    def expire(self, name: str) -> None:
        """EXPIRED (48 h running or pending): no results at all."""
        with self._lock:
            self._set(self._jobs[name], "BATCH_STATE_EXPIRED")

    def refuse_create(self, status: int = 429, retry_after: str | None = None) -> None:
        """The next create is refused with `status` (no job made)."""
        with self._lock:
            self._refusals.append((status, retry_after))

    def create_then(self, kind: Literal["server_error", "drop"]) -> None:
        """The next create makes its job, then answers 500 or drops the connection."""
        with self._lock:
            self._after_create.append(kind)

    def hold(self, endpoint: Endpoint) -> None:
        with self._lock:
            self._held.add(endpoint)

    def release(self, endpoint: Endpoint) -> None:
        with self._lock:
            self._held.discard(endpoint)
            self._changed.notify_all()

    def wait_held(self, endpoint: Endpoint, timeout: float) -> bool:
        """Whether a request to `endpoint` is being held within `timeout` seconds."""
        with self._lock:
            return self._changed.wait_for(lambda: self._waiting.get(endpoint, 0) > 0, timeout)

    # ---- the server's side -----------------------------------------------------------------

    def owns(self, scope: Mapping[str, Any]) -> bool:
        return _endpoint(scope["method"], unquote(scope["path"])) is not None

    async def serve(
        self, scope: dict[str, Any], body: bytes, hang: Callable[[float], Awaitable[bool]]
    ) -> Reply | None:
        method, path, query, headers = request_line(scope)
        path = unquote(path)
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError:
            payload = None
        record = RecordedRequest("google", method, path, query, headers, body, payload, None)
        endpoint = _endpoint(method, path)
        assert endpoint is not None
        with self._lock:
            self.requests.append(record)
            reply = self._answer(endpoint, path, query, body, payload)
            drop = reply is None
        while endpoint in self._held:
            with self._lock:
                self._waiting[endpoint] = self._waiting.get(endpoint, 0) + 1
                self._changed.notify_all()
            try:
                if not await hang(0.02):
                    return None
            finally:
                with self._lock:
                    self._waiting[endpoint] -= 1
        return None if drop else reply

    def _answer(
        self, endpoint: Endpoint, path: str, query: str, body: bytes, payload: Any
    ) -> Reply | None:
        match = _PATH.match(path)
        assert match is not None
        if endpoint == "create":
            return self._create(match.group("model"), body, payload)
        if endpoint == "list":
            return self._list(parse_qs(query))
        job = self._jobs.get(f"batches/{match.group('id')}")
        if job is None:
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        if endpoint == "cancel":
            if job.state in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"):
                self._set(job, "BATCH_STATE_CANCELLED")
            return wire.json_reply(200, {})
        if endpoint == "delete":
            del self._jobs[job.name]
            return wire.json_reply(200, {"name": job.name, "done": True})
        return wire.json_reply(200, job.wire())

    def _create(self, model: str, body: bytes, payload: Any) -> Reply | None:
        if self._refusals:
            status, retry_after = self._refusals.pop(0)
            headers = (("retry-after", retry_after),) if retry_after else ()
            return _error(status, _STATUS_NAMES.get(status, "FAILED_PRECONDITION"), "", headers)
        if len(body) > INLINE_LIMIT_BYTES:
            return _error(400, "INVALID_ARGUMENT", "Request payload size exceeds the limit.")
        batch = (payload or {}).get("batch") if isinstance(payload, dict) else None
        inline = ((batch or {}).get("inputConfig") or {}).get("requests") or {}
        entries = inline.get("requests")
        if not isinstance(entries, list) or not entries:
            return _error(400, "INVALID_ARGUMENT", "batch.input_config.requests is required")
        name = f"batches/{wire.hex_id(20)}"
        job = Job(name, model, str(batch.get("displayName") or ""), entries)  # type: ignore[union-attr]
        self._jobs[name] = job
        if self._after_create:
            return None if self._after_create.pop(0) == "drop" else _error(500, "INTERNAL", "")
        return wire.json_reply(200, job.wire())

    def _list(self, query: dict[str, list[str]]) -> Reply:
        size = int((query.get("pageSize") or ["50"])[0])
        start = int((query.get("pageToken") or ["0"])[0])
        jobs = list(self._jobs.values())[start : start + size]
        page: dict[str, Any] = {"operations": [job.wire() for job in jobs]}
        if start + size < len(self._jobs):
            page["nextPageToken"] = str(start + size)
        return wire.json_reply(200, page)

    def _responses(self, job: Job, entry: dict[str, Any], outcome: Outcome) -> list[Any]:
        metadata = entry.get("metadata") or {}
        if outcome == "missing":
            return []
        if outcome in _ERRORS:
            code, status = _ERRORS[outcome]
            return [{"error": {"code": code, "message": status}, "metadata": metadata}]
        path = f"/v1beta/models/{job.model}:generateContent"
        reply = gemini_wire.answer(
            self._answers, "google", path, entry.get("request") or {}, _FAULTS.get(outcome)
        )
        response = {"response": json.loads(reply.body)}
        if outcome == "no_key":
            return [response]
        return [{**response, "metadata": metadata}] * (2 if outcome == "duplicate" else 1)

    def _set(self, job: Job, state: str) -> None:
        job.state = state
        job.updated = now()


_STATUS_NAMES = {400: "INVALID_ARGUMENT", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED"}


def _endpoint(method: str, path: str) -> Endpoint | None:
    match = _PATH.match(path)
    if match is None:
        return None
    if match.group("model"):
        return "create" if method == "POST" else None
    if match.group("id") is None:
        return "list" if method == "GET" else None
    if match.group("cancel"):
        return "cancel" if method == "POST" else None
    return {"GET": "get", "DELETE": "delete"}.get(method)  # type: ignore[return-value]


def _error(
    status: int, name: str, message: str, headers: tuple[tuple[str, str], ...] = ()
) -> Reply:
    body = {"code": status, "message": message or name, "status": name}
    return wire.json_reply(status, {"error": body}, headers)
