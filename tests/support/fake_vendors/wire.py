"""What every vendor wire format shares: names, faults, replies, token estimates, answers."""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from tests.support.fake_vendors.schemas import (
    JUDGEMENT_SCHEMA,
    SchemaGenerator,
    camel_schema,
    random_judgement,
    violate,
)

Vendor = Literal["openai", "openrouter", "anthropic", "google"]
FaultKind = Literal[
    "server_error",
    "unavailable",
    "overloaded",
    "rate_limit",
    "auth",
    "bad_request",
    "timeout",
    "malformed",
    "schema_violation",
    "empty",
    "max_tokens",
    "auth_key_echo",
    "raw",
]

VENDORS: Final[tuple[Vendor, ...]] = get_args(Vendor)
FAULT_KINDS: Final[tuple[FaultKind, ...]] = get_args(FaultKind)
_VENDOR_ALIASES: Final[dict[str, Vendor]] = {"gemini": "google"}

JSON_TYPE: Final = "application/json"
GEMINI_PATH: Final = re.compile(
    r"^/(v1[a-z0-9]*)/(?:models/)?([^/:]+(?:/[^/:]+)*):generateContent$"
)

STATUS: Final[dict[str, int]] = {
    "server_error": 500,
    "unavailable": 503,
    "overloaded": 503,
    "rate_limit": 429,
    "auth": 401,
    "bad_request": 400,
}
"""The HTTP status of each status fault (Anthropic answers `overloaded` with 529)."""
MESSAGES: Final[dict[str, str]] = {
    "server_error": "The server had an error while processing your request.",
    "unavailable": "The service is temporarily unavailable. Please try again later.",
    "overloaded": "Overloaded",
    "rate_limit": "Rate limit reached for requests. Please try again in 2s.",
    "auth": "Incorrect API key provided.",
    "bad_request": "Invalid request.",
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    vendor: Vendor
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any
    fault: FaultKind | None
    received_at: float = field(default_factory=time.time)

    @property
    def model(self) -> str | None:
        """The model asked for: the body's `model`, or for Gemini the path's model segment."""
        if isinstance(self.json, dict) and isinstance(self.json.get("model"), str):
            return str(self.json["model"])
        match = GEMINI_PATH.match(self.path)
        return match.group(2) if match else None


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, body, extra headers and content type."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = JSON_TYPE


def json_reply(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, json.dumps(payload, separators=(",", ":")).encode(), headers)


def vendor_named(name: str) -> Vendor:
    """The vendor called `name` ("gemini" is "google"); ValueError for an unknown one."""
    vendor = _VENDOR_ALIASES.get(name, name)
    for known in VENDORS:
        if known == vendor:
            return known
    raise ValueError(f"unknown vendor {name!r}; expected one of {VENDORS}")


def route(method: str, path: str) -> Vendor | None:
    """The vendor whose endpoint `method` and `path` name, if any."""
    if method != "POST":
        return None
    if path == "/v1/chat/completions":
        return "openai"
    if path == "/api/v1/chat/completions":
        return "openrouter"
    if path == "/v1/messages":
        return "anthropic"
    return "google" if GEMINI_PATH.match(path) else None


def estimate_tokens(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return max(1, len(text) // 4)


def hex_id(length: int = 24) -> str:
    return uuid.uuid4().hex[:length]


def cut(text: str) -> str:
    """JSON text cut off midway, as a vendor sends it when it hit the token limit."""
    return text[: max(1, len(text) // 2)]


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def texts(value: Any) -> Iterator[str]:
    """Every piece of prompt text in a vendor payload's messages, system prompt or contents,
    in order: strings, and the `content` / `text` of message, block and part objects."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)
    elif isinstance(value, Mapping):
        for key in ("content", "text", "parts"):
            if key in value:
                yield from texts(value[key])


class Answers:
    """Where answers come from: a seeded `random.Random` (reproducible per seed, different
    call to call), or a `judge` reading the prompt; plus the prompt-cache prefixes seen.
    Callers hold the server's lock."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.judge: Callable[[str], dict[str, Any]] | None = None
        self._seen_prefixes: set[str] = set()

    def reset(self, seed: int) -> None:
        self.rng.seed(seed)
        self.judge = None
        self._seen_prefixes.clear()

    def structured(
        self, schema: Mapping[str, Any] | None, fault: FaultKind | None, shown: Any = None
    ) -> Any:
        """An answer for `schema` (a judgement without one), broken on `schema_violation`."""
        schema = camel_schema(schema) if schema is not None else None
        if self.judge is not None:
            instance: Any = self.judge("\n".join(texts(shown)))
        elif schema is not None:
            instance = SchemaGenerator(self.rng).instance(schema)
        else:
            instance = random_judgement(self.rng)
        if fault == "schema_violation":
            return violate(schema if schema is not None else JUDGEMENT_SCHEMA, instance, self.rng)
        return instance

    def cached(self, prefix: Any) -> int:
        """Tokens of `prefix` served from the prompt cache: none the first time it is seen."""
        if not prefix:
            return 0
        key = hashlib.sha256(json.dumps(prefix, sort_keys=True).encode()).hexdigest()
        if key in self._seen_prefixes:
            return estimate_tokens(prefix)
        self._seen_prefixes.add(key)
        return 0


def record_of(line: tuple[str, str, str, dict[str, str]], body: bytes) -> RecordedRequest | None:
    """The request (its `devtools.asgi.request_line` and body) as recorded, or None when it is
    to no vendor's endpoint."""
    method, path, query, headers = line
    vendor = route(method, path)
    if vendor is None:
        return None
    try:
        payload: Any = json.loads(body) if body else None
    except ValueError:
        payload = None
    return RecordedRequest(vendor, method, path, query, headers, body, payload, None)
