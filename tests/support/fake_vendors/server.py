"""`FakeUpstream`: the fake vendors on one local HTTP server, and its pytest fixtures."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Final, cast

import pytest

from devtools.asgi import request_line
from tests.support.fake_vendors import anthropic_wire, gemini_wire, openai_wire
from tests.support.fake_vendors.asgi import Hang, asgi_app
from tests.support.fake_vendors.batch_fakes import NOT_BATCH, BatchFakes
from tests.support.fake_vendors.threaded import HOST, ThreadedServer
from tests.support.fake_vendors.wire import (
    FAULT_KINDS,
    JSON_TYPE,
    STATUS,
    Answers,
    FaultKind,
    RecordedRequest,
    Reply,
    Vendor,
    json_reply,
    record_of,
    vendor_named,
)


@dataclass(frozen=True)
class _Wire:
    answer: Callable[[Answers, Vendor, str, dict[str, Any], FaultKind | None], Reply]
    error: Callable[[Vendor, str, str | None, tuple[tuple[str, str], ...]], Reply]


_OPENAI: Final = _Wire(openai_wire.answer, openai_wire.error)
_WIRES: Final[dict[Vendor, _Wire]] = {
    "openai": _OPENAI,
    "openrouter": _OPENAI,
    "anthropic": _Wire(anthropic_wire.answer, anthropic_wire.error),
    "google": _Wire(gemini_wire.answer, gemini_wire.error),
}
_MALFORMED: Final = Reply(200, b"<html><body>upstream proxy error</body></html>\n{not json")


@dataclass
class _Fault:
    kind: FaultKind
    remaining: int | None
    reply: Reply | None = None


class FakeUpstream:
    """A real HTTP/1.1 server on 127.0.0.1 (Hypercorn: keep-alive, concurrent connections)
    that answers as Anthropic, OpenAI, OpenRouter and Gemini do. Start with `start()` or
    `with FakeUpstream()`; `stop()` shuts the server and its thread down."""

    def __init__(self, *, seed: int = 0, hang_seconds: float = 30.0, port: int = 0) -> None:
        self.hang_seconds = hang_seconds
        """How long a `timeout` fault keeps a request waiting before it is answered."""
        self._initial_hang_seconds = hang_seconds
        self.retry_after = "2"
        """The `Retry-After` header sent with `rate_limit` faults."""
        self._seed = seed
        self._answers = Answers(seed)
        self._lock = threading.RLock()
        self._records: list[RecordedRequest] = []
        self._faults: dict[Vendor | None, _Fault] = {}
        self._batches = BatchFakes(self._answers, self._lock)  # `batch_fakes.py`
        self.anthropic_batches, self.openai_batches = self._batches.anthropic, self._batches.openai
        self.openrouter_batches, self.gemini_batches = (
            self._batches.openrouter,
            self._batches.gemini,
        )
        app = asgi_app(self.handle, lambda: self._server.stopping)
        self._server = ThreadedServer(app, name="fake-upstream", port=port)

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server.port is None:
            raise RuntimeError("the fake upstream is not running")
        return self._server.port

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """For `openai.AsyncOpenAI(base_url=...)`: the SDK appends `/chat/completions`."""
        return f"{self.base_url}/v1"

    @property
    def openrouter_base_url(self) -> str:
        """For the openai SDK pointed at OpenRouter: it appends `/chat/completions`."""
        return f"{self.base_url}/api/v1"

    @property
    def anthropic_base_url(self) -> str:
        """For `anthropic.AsyncAnthropic(base_url=...)`: the SDK appends `/v1/messages`."""
        return self.base_url

    @property
    def google_base_url(self) -> str:
        """For `genai.Client(http_options=HttpOptions(base_url=...))`: the SDK appends
        `/{api_version}/models/{model}:generateContent` (`v1` unless `api_version` is set)."""
        return self.base_url

    # ---- answers -----------------------------------------------------------------------------

    @property
    def seed(self) -> int:
        return self._seed

    @seed.setter
    def seed(self, value: int) -> None:
        with self._lock:
            self._seed = value
            self._answers.rng.seed(value)

    @property
    def judge(self) -> Callable[[str], dict[str, Any]] | None:
        """Answers from the presented prompt text instead of at random (see the package)."""
        return self._answers.judge

    @judge.setter
    def judge(self, value: Callable[[str], dict[str, Any]] | None) -> None:
        with self._lock:
            self._answers.judge = value

    # ---- records -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received since the last `clear()`, oldest first (a copy)."""
        with self._lock:
            return list(self._records)

    def requests_for(self, vendor: Vendor | str) -> list[RecordedRequest]:
        name = vendor_named(vendor)
        return [record for record in self.requests if record.vendor == name]

    def last(self, vendor: Vendor | str | None = None) -> RecordedRequest:
        """The newest request (to `vendor`, if given); AssertionError when there is none."""
        records = self.requests if vendor is None else self.requests_for(vendor)
        if not records:
            raise AssertionError(f"the fake upstream received no request for {vendor or 'any'}")
        return records[-1]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    # ---- faults ------------------------------------------------------------------------------

    def fail(self, vendor: Vendor | str | None, kind: FaultKind, times: int | None = None) -> None:
        """Make requests to `vendor` (every vendor when None) fail as `kind`: until `heal()`
        when `times` is None, otherwise for the next `times` requests. A vendor's own fault
        wins over one set for every vendor."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if kind == "raw":
            raise ValueError("a raw reply is set with fail_with(vendor, body, ...)")
        self._set_fault(vendor, _Fault(kind, _checked(times)))

    def fail_with(
        self,
        vendor: Vendor | str | None,
        body: bytes | str,
        *,
        status: int = 200,
        content_type: str = JSON_TYPE,
        times: int | None = None,
    ) -> None:
        """Answer requests to `vendor` (every vendor when None) with exactly this status and
        body, whatever was asked: until `heal()`, or for the next `times` requests."""
        raw = body.encode() if isinstance(body, str) else bytes(body)
        reply = Reply(status, raw, (), content_type)
        self._set_fault(vendor, _Fault("raw", _checked(times), reply))

    def heal(self, vendor: Vendor | str | None = None) -> None:
        """Clear the faults: all of them, or only the one set for `vendor`."""
        with self._lock:
            if vendor is None:
                self._faults.clear()
            else:
                self._faults.pop(vendor_named(vendor), None)

    def reset(self) -> None:
        """Heal, clear the records and the batch fakes, forget the cached prompt prefixes and
        the judge, restore `hang_seconds`, and rewind the seed."""
        with self._lock:
            self.hang_seconds = self._initial_hang_seconds
            self._faults.clear()
            self._records.clear()
            self._answers.reset(self._seed)
            self._batches.reset()

    def _set_fault(self, vendor: Vendor | str | None, fault: _Fault) -> None:
        key = None if vendor is None else vendor_named(vendor)
        with self._lock:
            self._faults[key] = fault

    def _take_fault(self, vendor: Vendor) -> _Fault | None:
        with self._lock:
            key: Vendor | None = vendor if vendor in self._faults else None
            fault = self._faults.get(key)
            if fault is not None and fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[key]
            return fault

    # ---- one request (on the server's thread) ------------------------------------------------

    async def handle(self, scope: dict[str, Any], body: bytes, hang: Hang) -> Reply | None:
        """Record the request, then answer it as its vendor would (or as its fault says);
        None when a hanging request is to be dropped. Batch API requests go to their fakes."""
        batch_reply = await self._batches.serve(scope, body, hang)
        if batch_reply is not NOT_BATCH:
            return cast("Reply | None", batch_reply)
        record = record_of(request_line(scope), body)
        if record is None:
            message = f"no route for {scope['method']} {scope['path']}"
            return json_reply(404, {"error": {"message": message}})
        taken = self._take_fault(record.vendor)
        fault = taken.kind if taken is not None else None
        with self._lock:
            self._records.append(replace(record, fault=fault))
        if taken is not None and taken.reply is not None:
            return taken.reply
        if fault == "timeout":
            if not await hang(self.hang_seconds):
                return None
            fault = None
        wire = _WIRES[record.vendor]
        headers = (("retry-after", self.retry_after),) if fault == "rate_limit" else ()
        if fault in STATUS:
            return wire.error(record.vendor, fault or "", None, headers)
        if fault == "auth_key_echo":
            return wire.error(record.vendor, "auth", openai_wire.key_echo(record.headers), ())
        if fault == "malformed":
            return _MALFORMED
        if not isinstance(record.json, dict):
            return wire.error(
                record.vendor, "bad_request", "The request body is not valid JSON.", ()
            )
        with self._lock:
            return wire.answer(self._answers, record.vendor, record.path, record.json, fault)


def _checked(times: int | None) -> int | None:
    if times is not None and times < 1:
        raise ValueError("times must be None or at least 1")
    return times


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    """One fake vendor server for the whole session (tests share it: see clean_fake_upstream)."""
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def clean_fake_upstream(fake_upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    """The session's fake vendor server, reset before and after the test."""
    fake_upstream.reset()
    yield fake_upstream
    fake_upstream.reset()
