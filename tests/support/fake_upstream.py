"""A fake LLM vendor that the real vendor SDKs talk to over real HTTP.

`FakeUpstream` serves the Anthropic, OpenAI, OpenRouter and Gemini (Google AI) endpoints the
service calls, on a free loopback port, from a background thread with its own event loop.
The SDKs reach it through their own HTTP stacks (httpx2 for anthropic and openai, httpx2 or
httpx for google-genai), so nothing in the SDKs is patched.

What it answers:

- OpenAI / OpenRouter `POST /v1/chat/completions`, `POST /api/v1/chat/completions`: a
  chat.completion whose message content is a random instance of
  `response_format.json_schema.schema` (or a random judgement with `json_object`).
- Anthropic `POST /v1/messages`: a `tool_use` block for the forced (or only) tool whose input
  is a random instance of its `input_schema`, with a `thinking` block first when thinking is on;
  without tools, a text block with JSON (an instance of `output_config.format.schema` if given).
  It refuses, as the API does, thinking with a forced tool, a temperature other than 1 with
  thinking, and a thinking budget under 1024 or not below `max_tokens`.
- Gemini `POST /{v1,v1beta}/models/{model}:generateContent` (google-genai 3.x sends `v1` unless
  `HttpOptions(api_version=...)` says otherwise): one candidate whose text part is a random
  instance of `generationConfig.responseJsonSchema` or `.responseSchema`.

Requests missing what the API requires, and (OpenAI only) a `strict` json_schema that breaks
the structured-outputs rules, get the vendor's 400 error.

Answers come from a `random.Random` seeded per server (`seed`), so a run is reproducible but
answers differ from call to call. A `judge` (`fake.judge = fn`) answers instead from what the
vendor was shown: it gets the prompt's text as the vendor received it (system and user parts
joined) and returns the judgement object (winner, justification, confidence), which is then
sent in the vendor's wire format like any other answer (`tests/support/judges.py`).

Every request is recorded (`requests`, `last`, `clear`);
faults are switched on from the test thread with `fail(vendor, kind, times)` and off with
`heal()`. Beside the HTTP errors, `timeout` (hang for `hang_seconds`), `malformed` (an HTML
200), `schema_violation` and `empty`, there are `max_tokens` (the vendor stopped at the token
limit: Anthropic `stop_reason` "max_tokens" with a cut-off tool call, OpenAI/OpenRouter
`finish_reason` "length" and Gemini `finishReason` MAX_TOKENS with cut-off JSON text),
`auth_key_echo` (a 401 whose message echoes the caller's key masked, as OpenAI's does:
"Incorrect API key provided: sk-abc***wxyz") and `raw`: any status and body, set with
`fail_with(vendor, body, status=..., content_type=..., times=...)`.

The `fake_upstream` fixture is one server for the session; `clean_fake_upstream` hands it
to a test reset (no faults, no records, the seed rewound).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import random
import re
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal, get_args

import h11
import pytest

from devtools.http11 import read_request, write_response

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

JUDGEMENT_WINNERS: Final = ("Essay A", "Essay B")
JUSTIFICATION_MAX_CHARS: Final = 500

_JSON = "application/json"
_GEMINI_PATH = re.compile(r"^/(v1[a-z0-9]*)/(?:models/)?([^/:]+(?:/[^/:]+)*):generateContent$")


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
        match = _GEMINI_PATH.match(self.path)
        return match.group(2) if match else None


@dataclass
class _Fault:
    kind: FaultKind
    remaining: int | None
    reply: _Reply | None = None


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = _JSON


def _json_reply(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> _Reply:
    return _Reply(status, json.dumps(payload, separators=(",", ":")).encode(), headers)


# --------------------------------------------------------------------------------------------
# Random instances of a (small subset of) JSON Schema / Gemini OpenAPI Schema.
# --------------------------------------------------------------------------------------------

_WORDS: Final = (
    "essay", "argument", "clearer", "structure", "evidence", "coherent", "thesis", "stronger",
    "paragraph", "analysis", "persuasive", "examples", "conclusion", "reasoning", "voice",
    "organised", "precise", "vocabulary", "insight", "develops", "original", "supports",
    "transitions", "counterargument", "concise", "engaging", "logical", "detail",
)  # fmt: skip


_NAMED_CHILDREN: Final = frozenset({"properties", "$defs", "definitions", "patternProperties"})


def camel_schema(schema: Any) -> Any:
    """The schema with snake_case keywords spelled in camelCase. google-genai sends
    `responseSchema` with snake_case keys inside (`max_length`, `property_ordering`,
    `any_of`), which the Gemini API accepts as it accepts camelCase; property names are
    left as they are."""
    if isinstance(schema, list):
        return [camel_schema(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        name = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key) if "_" in key else key
        if name in _NAMED_CHILDREN and isinstance(value, Mapping):
            converted[name] = {child: camel_schema(sub) for child, sub in value.items()}
        else:
            converted[name] = camel_schema(value)
    return converted


def _resolve(schema: Any, root: Mapping[str, Any]) -> dict[str, Any]:
    """Follow local `$ref`s (`#/$defs/X`, `#/definitions/X`) to the schema they name."""
    seen = 0
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and seen < 32:
        target: Any = root
        for part in str(schema["$ref"]).removeprefix("#/").split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        seen += 1
    return dict(schema) if isinstance(schema, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    return None


def _types(schema: Mapping[str, Any]) -> list[str]:
    """The schema's type names, lower-cased (Gemini spells them "OBJECT", "STRING", ...)."""
    raw = schema.get("type")
    names = raw if isinstance(raw, list) else [raw] if raw is not None else []
    found = [str(name).lower() for name in names if str(name).upper() != "TYPE_UNSPECIFIED"]
    if found:
        return found
    if "properties" in schema:
        return ["object"]
    if "items" in schema:
        return ["array"]
    return []


def _bounds(schema: Mapping[str, Any]) -> tuple[float | None, float | None]:
    low, high = _number(schema.get("minimum")), _number(schema.get("maximum"))
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if _number(ex_low) is not None:  # JSON Schema 2019+: a number
        low = _number(ex_low)
        low = None if low is None else low + 1e-9
    elif ex_low is True and low is not None:
        low += 1e-9
    if _number(ex_high) is not None:
        high = _number(ex_high)
        high = None if high is None else high - 1e-9
    elif ex_high is True and high is not None:
        high -= 1e-9
    return low, high


def _text(rng: random.Random, min_length: int = 0, max_length: int | None = None) -> str:
    limit = JUSTIFICATION_MAX_CHARS if max_length is None else max_length
    words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 24))]
    sentence = " ".join(words).capitalize() + "."
    if len(sentence) > limit:
        sentence = sentence[:limit].rstrip()
    while len(sentence) < min_length:
        sentence += rng.choice(string.ascii_lowercase)
    return sentence


class SchemaGenerator:
    """Draws random instances of a schema: object/properties/required, string (enum, const,
    minLength, maxLength), integer/number (minimum, maximum, exclusive bounds), boolean,
    array (items, minItems, maxItems), null, anyOf/oneOf/allOf and local `$ref`."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def instance(self, schema: Mapping[str, Any]) -> Any:
        return self._draw(schema, schema, 0)

    def _draw(self, schema: Any, root: Mapping[str, Any], depth: int) -> Any:
        node = _resolve(schema, root)
        rng = self.rng
        if "const" in node:
            return node["const"]
        if isinstance(node.get("enum"), list) and node["enum"]:
            return rng.choice(node["enum"])
        for key in ("anyOf", "oneOf"):
            options = [o for o in node.get(key) or [] if _types(_resolve(o, root)) != ["null"]]
            if options:
                return self._draw(rng.choice(options), root, depth + 1)
        if isinstance(node.get("allOf"), list):
            merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
            for part in node["allOf"]:
                merged.update(_resolve(part, root))
            return self._draw(merged, root, depth + 1)
        kinds = [kind for kind in _types(node) if kind != "null"] or _types(node) or ["string"]
        kind = rng.choice(kinds)
        if kind == "object":
            return self._object(node, root, depth)
        if kind == "array":
            low = int(_number(node.get("minItems")) or 0)
            high = _number(node.get("maxItems"))
            count = rng.randint(max(low, 1 if depth < 4 else 0), int(high) if high else low + 3)
            return [self._draw(node.get("items") or {}, root, depth + 1) for _ in range(count)]
        return self._scalar(kind, node)

    def _scalar(self, kind: str, node: Mapping[str, Any]) -> Any:
        rng = self.rng
        if kind in ("integer", "number"):
            low, high = _bounds(node)
            if kind == "integer":
                low = math.ceil(low) if low is not None else None
                high = math.floor(high) if high is not None else None
            low = low if low is not None else (high - 100 if high is not None else 0)
            high = high if high is not None else low + 100
            if kind == "integer":
                return rng.randint(int(low), max(int(low), int(high)))
            return round(rng.uniform(low, high), 6)
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "null":
            return None
        max_length = _number(node.get("maxLength"))
        return _text(
            rng,
            int(_number(node.get("minLength")) or 0),
            None if max_length is None else int(max_length),
        )

    def _object(self, node: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Any:
        properties: Mapping[str, Any] = node.get("properties") or {}
        required = node.get("required")
        chosen = [
            name
            for name in properties
            if required is None or name in required or (depth < 4 and self.rng.random() < 0.5)
        ]
        return {name: self._draw(properties[name], root, depth + 1) for name in chosen}


def schema_errors(schema: Mapping[str, Any], instance: Any) -> list[str]:
    """What is wrong with `instance` under `schema` (the subset `SchemaGenerator` draws from,
    in JSON Schema or Gemini's OpenAPI spelling); empty when it conforms."""
    root = camel_schema(schema)
    return _errors(root, instance, root, "$")


def _type_ok(kind: str, value: Any) -> bool:
    checks: dict[str, bool] = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }
    return checks.get(kind, True)


def _errors(schema: Any, value: Any, root: Mapping[str, Any], at: str) -> list[str]:
    node = _resolve(schema, root)
    if value is None and node.get("nullable") is True:
        return []
    errors: list[str] = []
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list) and all(_errors(o, value, root, at) for o in options):
            errors.append(f"{at}: matches none of {key}")
    for part in node.get("allOf") or []:
        errors += _errors(part, value, root, at)
    if "const" in node and value != node["const"]:
        errors.append(f"{at}: {value!r} is not {node['const']!r}")
    if isinstance(node.get("enum"), list) and value not in node["enum"]:
        errors.append(f"{at}: {value!r} is not one of {node['enum']!r}")
    kinds = _types(node)
    if kinds and not any(_type_ok(kind, value) for kind in kinds):
        return [*errors, f"{at}: {value!r} is not of type {'/'.join(kinds)}"]
    if isinstance(value, dict):
        return errors + _object_errors(node, value, root, at)
    if isinstance(value, list):
        for index, item in enumerate(value):
            errors += _errors(node.get("items") or {}, item, root, f"{at}[{index}]")
    return errors + _size_errors(node, value, at)


def _size_errors(node: Mapping[str, Any], value: Any, at: str) -> list[str]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        low, high = _bounds(node)
        size, what = float(value), f"{value!r}"
    elif isinstance(value, str):
        low, high = _number(node.get("minLength")), _number(node.get("maxLength"))
        size, what = float(len(value)), f"length {len(value)}"
    elif isinstance(value, list):
        low, high = _number(node.get("minItems")), _number(node.get("maxItems"))
        size, what = float(len(value)), f"{len(value)} items"
    else:
        return []
    if (low is not None and size < low) or (high is not None and size > high):
        return [f"{at}: {what} is out of range [{low}, {high}]"]
    return []


def _object_errors(
    node: Mapping[str, Any], value: dict[str, Any], root: Mapping[str, Any], at: str
) -> list[str]:
    errors: list[str] = []
    properties: Mapping[str, Any] = node.get("properties") or {}
    for name in node.get("required") or []:
        if name not in value:
            errors.append(f"{at}: missing required property {name!r}")
    for name, item in value.items():
        if name in properties:
            errors += _errors(properties[name], item, root, f"{at}.{name}")
        elif node.get("additionalProperties") is False:
            errors.append(f"{at}: unexpected property {name!r}")
    return errors


def violate(schema: Mapping[str, Any], instance: Any, rng: random.Random) -> Any:
    """A copy of `instance` changed so that it breaks `schema`: an enum value that is not in
    the enum (winner "Essay C"), a number past its bound (confidence 9), a string past its
    maxLength, or a required property left out. Chosen at random among those that apply."""
    node = _resolve(schema, schema)
    if not isinstance(instance, dict):
        return {"unexpected": instance}
    properties: Mapping[str, Any] = node.get("properties") or {}
    changes: list[tuple[str, str, Any]] = []
    for name, raw in properties.items():
        prop = _resolve(raw, schema)
        enum = [value for value in prop.get("enum") or [] if isinstance(value, str)]
        low, high = _bounds(prop)
        max_length = _number(prop.get("maxLength"))
        if enum:
            top = max(enum)
            bumped = top[:-1] + chr(ord(top[-1]) + 1) if top else "?"
            changes.append(("set", name, bumped if bumped not in enum else f"{top}?"))
        elif high is not None and set(_types(prop)) & {"integer", "number"}:
            changes.append(("set", name, math.floor(high) + 4))
        elif low is not None and set(_types(prop)) & {"integer", "number"}:
            changes.append(("set", name, math.ceil(low) - 4))
        elif max_length is not None:
            changes.append(("set", name, "x" * (int(max_length) + 10)))
    for name in node.get("required") or []:
        changes.append(("drop", name, None))
    broken = dict(instance)
    if not changes:
        broken["unexpected"] = True
        return broken if node.get("additionalProperties") is False else ["not", "an", "object"]
    action, name, value = rng.choice(changes)
    if action == "drop":
        broken.pop(name, None)
    else:
        broken[name] = value
    return broken


def random_judgement(rng: random.Random) -> dict[str, Any]:
    """What the fake answers when asked for JSON without a schema."""
    return {
        "winner": rng.choice(JUDGEMENT_WINNERS),
        "justification": _text(rng, 1, JUSTIFICATION_MAX_CHARS),
        "confidence": rng.randint(1, 5),
    }


JUDGEMENT_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "winner": {"type": "string", "enum": list(JUDGEMENT_WINNERS)},
        "justification": {"type": "string", "maxLength": JUSTIFICATION_MAX_CHARS},
        "confidence": {"type": "integer", "minimum": 1, "maximum": 5},
    },
    "required": ["winner", "justification", "confidence"],
    "additionalProperties": False,
}


def _strict_schema_problem(schema: Any, root: Mapping[str, Any], at: str = "()") -> str | None:
    """OpenAI's structured-outputs rule for `strict: true`: every object sets
    `additionalProperties: false` and lists all its properties in `required`."""
    node = _resolve(schema, root)
    if "object" in _types(node):
        if node.get("additionalProperties") is not False:
            return (
                f"In context={at}, 'additionalProperties' is required to be supplied "
                "and to be false."
            )
        properties = node.get("properties") or {}
        missing = [name for name in properties if name not in (node.get("required") or [])]
        if missing:
            return (
                f"In context={at}, 'required' is required to be supplied and to be an array "
                f"including every key in properties. Missing '{missing[0]}'."
            )
        children = [(f"{at}, 'properties', '{k}'", v) for k, v in properties.items()]
    else:
        children = (
            [(f"{at}, 'items'", node["items"])] if isinstance(node.get("items"), dict) else []
        )
    children += [(at, option) for key in ("anyOf", "allOf") for option in node.get(key) or []]
    for where, child in children:
        problem = _strict_schema_problem(child, root, where)
        if problem:
            return problem
    return None


# --------------------------------------------------------------------------------------------
# Vendor wire formats
# --------------------------------------------------------------------------------------------

_STATUS: Final[dict[str, int]] = {
    "server_error": 500,
    "unavailable": 503,
    "overloaded": 503,
    "rate_limit": 429,
    "auth": 401,
    "bad_request": 400,
}
_ANTHROPIC_ERROR_TYPES: Final[dict[str, str]] = {
    "server_error": "api_error",
    "unavailable": "overloaded_error",
    "overloaded": "overloaded_error",
    "rate_limit": "rate_limit_error",
    "auth": "authentication_error",
    "bad_request": "invalid_request_error",
}
_GOOGLE_STATUSES: Final[dict[str, str]] = {
    "server_error": "INTERNAL",
    "unavailable": "UNAVAILABLE",
    "overloaded": "UNAVAILABLE",
    "rate_limit": "RESOURCE_EXHAUSTED",
    "auth": "UNAUTHENTICATED",
    "bad_request": "INVALID_ARGUMENT",
}
_OPENAI_ERRORS: Final[dict[str, tuple[str, str | None]]] = {
    "server_error": ("server_error", None),
    "unavailable": ("server_error", "service_unavailable"),
    "overloaded": ("server_error", "engine_overloaded"),
    "rate_limit": ("requests", "rate_limit_exceeded"),
    "auth": ("invalid_request_error", "invalid_api_key"),
    "bad_request": ("invalid_request_error", "invalid_value"),
}
_MESSAGES: Final[dict[str, str]] = {
    "server_error": "The server had an error while processing your request.",
    "unavailable": "The service is temporarily unavailable. Please try again later.",
    "overloaded": "Overloaded",
    "rate_limit": "Rate limit reached for requests. Please try again in 2s.",
    "auth": "Incorrect API key provided.",
    "bad_request": "Invalid request.",
}


def _estimate_tokens(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return max(1, len(text) // 4)


def _hex(length: int = 24) -> str:
    return uuid.uuid4().hex[:length]


class FakeUpstream:
    """A real HTTP/1.1 server on 127.0.0.1 (keep-alive, concurrent connections) that answers as
    Anthropic, OpenAI, OpenRouter and Gemini do. Start with `start()` or `with FakeUpstream()`;
    `stop()` shuts the server and its thread down."""

    def __init__(self, *, seed: int = 0, hang_seconds: float = 30.0, port: int = 0) -> None:
        self.hang_seconds = hang_seconds
        """How long a `timeout` fault keeps a request waiting before it is answered."""
        self._initial_hang_seconds = hang_seconds
        self.retry_after = "2"
        """The `Retry-After` header sent with `rate_limit` faults."""
        self._requested_port = port
        self._seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._records: list[RecordedRequest] = []
        self._faults: dict[Vendor | None, _Fault] = {}
        self._seen_prefixes: set[str] = set()
        self.judge: Callable[[str], dict[str, Any]] | None = None
        """Answers from the presented prompt text instead of at random (see the module)."""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._port: int | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        if self._thread is not None:
            return self
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("the fake upstream did not start within 10 s")
        if self._startup_error is not None:
            self._thread.join(timeout=5)
            self._thread = None
            raise RuntimeError("the fake upstream failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop has just closed on its own
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=10)
        if thread.is_alive():
            raise RuntimeError("the fake upstream's thread did not stop within 10 s")
        self._thread = None
        self._port = None

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
        if self._port is None:
            raise RuntimeError("the fake upstream is not running")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
            self._rng.seed(value)

    # ---- records -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received since the last `clear()`, oldest first (a copy)."""
        with self._lock:
            return list(self._records)

    def requests_for(self, vendor: Vendor | str) -> list[RecordedRequest]:
        name = _vendor(vendor)
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
        if times is not None and times < 1:
            raise ValueError("times must be None or at least 1")
        if kind == "raw":
            raise ValueError("a raw reply is set with fail_with(vendor, body, ...)")
        key = None if vendor is None else _vendor(vendor)
        with self._lock:
            self._faults[key] = _Fault(kind, times)

    def fail_with(
        self,
        vendor: Vendor | str | None,
        body: bytes | str,
        *,
        status: int = 200,
        content_type: str = _JSON,
        times: int | None = None,
    ) -> None:
        """Answer requests to `vendor` (every vendor when None) with exactly this status and
        body, whatever was asked: until `heal()`, or for the next `times` requests."""
        if times is not None and times < 1:
            raise ValueError("times must be None or at least 1")
        raw = body.encode() if isinstance(body, str) else bytes(body)
        key = None if vendor is None else _vendor(vendor)
        with self._lock:
            self._faults[key] = _Fault("raw", times, _Reply(status, raw, (), content_type))

    def heal(self, vendor: Vendor | str | None = None) -> None:
        """Clear the faults: all of them, or only the one set for `vendor`."""
        with self._lock:
            if vendor is None:
                self._faults.clear()
            else:
                self._faults.pop(_vendor(vendor), None)

    def reset(self) -> None:
        """Heal, clear the records, forget the cached prompt prefixes and the judge, restore
        `hang_seconds`, and rewind the seed."""
        with self._lock:
            self.judge = None
            self.hang_seconds = self._initial_hang_seconds
            self._faults.clear()
            self._records.clear()
            self._seen_prefixes.clear()
            self._rng.seed(self._seed)

    def _take_fault(self, vendor: Vendor) -> _Fault | None:
        with self._lock:
            key: Vendor | None = vendor if vendor in self._faults else None
            fault = self._faults.get(key)
            if fault is None:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[key]
            return fault

    # ---- the server thread -------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:  # reported to start(); the thread just ends
            self._startup_error = error
        finally:
            self._ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(
            self._connection, host="127.0.0.1", port=self._requested_port
        )
        self._port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            current = asyncio.current_task()
            for _ in range(10):
                others = [task for task in asyncio.all_tasks() if task is not current]
                if not others:
                    break
                for task in others:
                    task.cancel()
                await asyncio.gather(*others, return_exceptions=True)
            await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while self._stopping is not None and not self._stopping.is_set():
                received = await read_request(conn, reader)
                if received is None:
                    return
                reply = await self._handle(conn, reader, *received)
                if reply is None:  # the client left while the request hung
                    return
                await write_response(
                    conn, writer, reply.status, reply.content_type, reply.body, reply.headers
                )
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _hang(self, conn: h11.Connection, reader: asyncio.StreamReader) -> bool:
        """Wait `hang_seconds`; False if the client hung up or the server is stopping first."""
        assert self._stopping is not None
        gone = asyncio.ensure_future(reader.read(65536))
        stopping = asyncio.ensure_future(self._stopping.wait())
        done, pending = await asyncio.wait(
            {gone, stopping}, timeout=self.hang_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if gone in done:
            data = gone.result() if not gone.cancelled() and gone.exception() is None else b""
            if not data:
                return False
            conn.receive_data(data)  # a pipelined request: keep it for the next cycle
            return await self._hang(conn, reader)
        return stopping not in done

    async def _handle(
        self, conn: h11.Connection, reader: asyncio.StreamReader, request: h11.Request, body: bytes
    ) -> _Reply | None:
        method = request.method.decode()
        path, _, query = request.target.decode().partition("?")
        headers: dict[str, str] = {}
        for name, value in request.headers:
            key = name.decode().lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        vendor = _route(method, path)
        if vendor is None:
            return _json_reply(404, {"error": {"message": f"no route for {method} {path}"}})
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError:
            payload = None
        taken = self._take_fault(vendor)
        fault = taken.kind if taken is not None else None
        record = RecordedRequest(vendor, method, path, query, headers, body, payload, fault)
        with self._lock:
            self._records.append(record)
        if taken is not None and taken.reply is not None:
            return taken.reply
        if fault == "timeout":
            if not await self._hang(conn, reader):
                return None
            fault = None
        if fault in _STATUS:
            return self._error(vendor, fault or "server_error")
        if fault == "auth_key_echo":
            return self._error(vendor, "auth", _key_echo(headers))
        if fault == "malformed":
            return _Reply(200, b"<html><body>upstream proxy error</body></html>\n{not json")
        if not isinstance(payload, dict):
            return self._error(vendor, "bad_request", "The request body is not valid JSON.")
        answer = {
            "openai": self._openai,
            "openrouter": self._openai,
            "anthropic": self._anthropic,
            "google": self._google,
        }[vendor]
        with self._lock:
            return answer(vendor, path, payload, fault)

    # ---- vendor answers (called with the lock held) ------------------------------------------

    def _error(self, vendor: Vendor, kind: str, message: str | None = None) -> _Reply:
        status = _STATUS[kind]
        text = message or _MESSAGES[kind]
        headers: tuple[tuple[str, str], ...] = ()
        if kind == "rate_limit":
            headers = (("retry-after", self.retry_after),)
        if vendor == "anthropic":
            if kind == "overloaded":
                status = 529
            request_id = f"req_{_hex()}"
            body: dict[str, Any] = {
                "type": "error",
                "error": {"type": _ANTHROPIC_ERROR_TYPES[kind], "message": text},
                "request_id": request_id,
            }
            return _json_reply(status, body, (*headers, ("request-id", request_id)))
        if vendor == "google":
            error: dict[str, Any] = {
                "code": status,
                "message": text,
                "status": _GOOGLE_STATUSES[kind],
            }
            if kind == "rate_limit":
                error["details"] = [
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{self.retry_after}s",
                    }
                ]
            return _json_reply(status, {"error": error}, headers)
        error_type, code = _OPENAI_ERRORS[kind]
        if vendor == "openrouter":
            body = {"error": {"message": text, "type": error_type, "code": status}}
        else:
            body = {"error": {"message": text, "type": error_type, "param": None, "code": code}}
        return _json_reply(status, body, (*headers, ("x-request-id", f"req_{_hex()}")))

    def _structured(
        self, schema: Mapping[str, Any] | None, fault: FaultKind | None, shown: Any = None
    ) -> dict[str, Any] | Any:
        schema = camel_schema(schema) if schema is not None else None
        if self.judge is not None:
            instance: Any = self.judge("\n".join(_texts(shown)))
        elif schema is not None:
            instance = SchemaGenerator(self._rng).instance(schema)
        else:
            instance = random_judgement(self._rng)
        if fault == "schema_violation":
            return violate(schema if schema is not None else JUDGEMENT_SCHEMA, instance, self._rng)
        return instance

    def _cached(self, prefix: Any) -> int:
        """Tokens of `prefix` served from the prompt cache: none the first time it is seen."""
        if not prefix:
            return 0
        key = hashlib.sha256(json.dumps(prefix, sort_keys=True).encode()).hexdigest()
        if key in self._seen_prefixes:
            return _estimate_tokens(prefix)
        self._seen_prefixes.add(key)
        return 0

    def _openai(
        self, vendor: Vendor, path: str, payload: dict[str, Any], fault: FaultKind | None
    ) -> _Reply:
        messages = payload.get("messages")
        if not isinstance(payload.get("model"), str) or not isinstance(messages, list):
            return self._error(vendor, "bad_request", "'model' and 'messages' are required.")
        response_format = payload.get("response_format") or {}
        schema: Mapping[str, Any] | None = None
        if response_format.get("type") == "json_schema":
            spec = response_format.get("json_schema") or {}
            found: dict[str, Any] = spec["schema"] if isinstance(spec.get("schema"), dict) else {}
            schema = found
            problem = _strict_schema_problem(found, found) if spec.get("strict") else None
            if problem and vendor == "openai":
                name = spec.get("name", "response")
                return self._error(
                    vendor, "bad_request", f"Invalid schema for response_format '{name}': {problem}"
                )
        content = (
            ""
            if fault == "empty"
            else json.dumps(self._structured(schema, fault, messages), separators=(",", ":"))
        )
        if fault == "max_tokens":
            content = _cut(content)
        system = [
            m for m in messages if isinstance(m, dict) and m.get("role") in ("system", "developer")
        ]
        prompt_tokens = _estimate_tokens(messages)
        completion_tokens = _estimate_tokens(content) if content else 0
        reasoning = self._rng.randint(16, 256) if payload.get("reasoning_effort") else 0
        body: dict[str, Any] = {
            "id": f"{'gen-' if vendor == 'openrouter' else 'chatcmpl-'}{_hex()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": payload["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "length" if fault == "max_tokens" else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens + reasoning,
                "total_tokens": prompt_tokens + completion_tokens + reasoning,
                "prompt_tokens_details": {
                    "cached_tokens": min(self._cached(system), prompt_tokens)
                },
                "completion_tokens_details": {"reasoning_tokens": reasoning},
            },
            "system_fingerprint": "fp_fake",
        }
        if vendor == "openrouter":
            body["provider"] = "FakeRouter"
        return _json_reply(200, body, (("x-request-id", f"req_{_hex()}"),))

    def _anthropic(
        self, vendor: Vendor, path: str, payload: dict[str, Any], fault: FaultKind | None
    ) -> _Reply:
        problem = _anthropic_problem(payload)
        if problem:
            return self._error(vendor, "bad_request", problem)
        tools = [tool for tool in payload.get("tools") or [] if isinstance(tool, dict)]
        choice = payload.get("tool_choice") or {}
        prompt_parts = [payload.get("system"), payload["messages"]]
        tool: dict[str, Any] | None = None
        if choice.get("type") == "tool":
            tool = next((t for t in tools if t.get("name") == choice.get("name")), None)
            if tool is None:
                return self._error(
                    vendor, "bad_request", f"tool_choice names unknown tool {choice.get('name')!r}"
                )
        elif tools and choice.get("type") in (None, "auto", "any"):
            tool = tools[0]
        content: list[dict[str, Any]] = []
        thinking = payload.get("thinking") or {}
        if thinking.get("type") in ("enabled", "adaptive"):
            shown = thinking.get("display") != "omitted"
            content.append(
                {
                    "type": "thinking",
                    "thinking": _text(self._rng, 1, 300) if shown else "",
                    "signature": f"sig_{_hex(32)}",
                }
            )
        output_format = (payload.get("output_config") or {}).get("format") or {}
        if tool is None and output_format.get("type") == "json_schema":
            found = output_format.get("schema")
            text = json.dumps(
                self._structured(found if isinstance(found, dict) else {}, fault, prompt_parts),
                separators=(",", ":"),
            )
            content.append({"type": "text", "text": text})
            stop_reason = "end_turn"
        elif tool is not None:
            tool_input = self._structured(tool.get("input_schema") or {}, fault, prompt_parts)
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{_hex()}",
                    "name": tool["name"],
                    "input": tool_input,
                }
            )
            stop_reason = "tool_use"
        else:
            text = json.dumps(self._structured(None, fault, prompt_parts), separators=(",", ":"))
            content.append({"type": "text", "text": text})
            stop_reason = "end_turn"
        if fault == "empty":
            content, stop_reason = [], "end_turn"
        if fault == "max_tokens":
            content, stop_reason = _cut_off(content), "max_tokens"
        system = payload.get("system")
        total = _estimate_tokens([system, payload["messages"], payload.get("tools")])
        cache_read, cache_creation, creation_1h = self._anthropic_cache(payload)
        request_id = f"req_{_hex()}"
        body = {
            "id": f"msg_{_hex()}",
            "type": "message",
            "role": "assistant",
            "model": payload["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": max(1, total - cache_read - cache_creation),
                "output_tokens": _estimate_tokens(content),
                "cache_read_input_tokens": cache_read,
                "cache_creation_input_tokens": cache_creation,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": cache_creation - creation_1h,
                    "ephemeral_1h_input_tokens": creation_1h,
                },
            },
        }
        return _json_reply(200, body, (("request-id", request_id),))

    def _anthropic_cache(self, payload: Mapping[str, Any]) -> tuple[int, int, int]:
        """(cache reads, cache writes, writes at the 1-hour TTL) of a Messages request: the
        prefix of its blocks (system, then the first user message's content) up to the last
        `cache_control` is read from the cache when seen before, else written to it."""
        blocks = [b for b in _block_list(payload.get("system")) if isinstance(b, dict)]
        messages = payload.get("messages") or []
        if messages and isinstance(messages[0], dict):
            blocks += [b for b in _block_list(messages[0].get("content")) if isinstance(b, dict)]
        marked = [i for i, b in enumerate(blocks) if "cache_control" in b]
        if not marked:
            return 0, 0, 0
        prefix = blocks[: marked[-1] + 1]
        read = self._cached(prefix)
        if read:
            return read, 0, 0
        hour = [i for i in marked if blocks[i]["cache_control"].get("ttl") == "1h"]
        written_1h = _estimate_tokens(blocks[: hour[-1] + 1]) if hour else 0
        return 0, _estimate_tokens(prefix), written_1h

    def _google(
        self, vendor: Vendor, path: str, payload: dict[str, Any], fault: FaultKind | None
    ) -> _Reply:
        # google-genai sends some nested fields in snake_case (`thinking_budget`, `max_length`)
        config = camel_schema(payload.get("generationConfig") or {})
        if not isinstance(payload.get("contents"), list) or not payload["contents"]:
            return self._error(
                vendor,
                "bad_request",
                "* GenerateContentRequest.contents: contents is not specified",
            )
        if "responseSchema" in config and "responseJsonSchema" in config:
            return self._error(
                vendor, "bad_request", "responseSchema and responseJsonSchema cannot both be set."
            )
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        text = json.dumps(
            self._structured(
                schema if isinstance(schema, dict) else None,
                fault,
                [payload.get("systemInstruction"), payload["contents"]],
            ),
            separators=(",", ":"),
        )
        thinking = config.get("thinkingConfig") or {}
        parts: list[dict[str, Any]] = []
        if thinking.get("includeThoughts"):
            parts.append({"text": _text(self._rng, 1, 300), "thought": True})
        if fault == "max_tokens":
            text = _cut(text)
        parts.append({"text": text})
        candidate: dict[str, Any] = {
            "content": {"role": "model", "parts": parts},
            "finishReason": "MAX_TOKENS" if fault == "max_tokens" else "STOP",
            "index": 0,
        }
        if fault == "empty":
            candidate["content"] = {"role": "model"}
        system = payload.get("systemInstruction")
        prompt_tokens = _estimate_tokens([system, payload["contents"]])
        candidates_tokens = _estimate_tokens(text) if fault != "empty" else 0
        thoughts = self._rng.randint(16, 256) if thinking.get("thinkingBudget", -1) != 0 else 0
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": candidates_tokens,
            "totalTokenCount": prompt_tokens + candidates_tokens + thoughts,
        }
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        cached = min(self._cached(system), prompt_tokens)
        if cached:
            usage["cachedContentTokenCount"] = cached
        match = _GEMINI_PATH.match(path)
        model = match.group(2) if match else "gemini"
        body = {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": _hex(22),
        }
        return _json_reply(200, body)


def _key_echo(headers: Mapping[str, str]) -> str:
    """OpenAI's 401 message, which names the key it was sent, masked."""
    key = headers.get("x-api-key") or headers.get("x-goog-api-key") or ""
    if not key:
        key = headers.get("authorization", "").removeprefix("Bearer ").strip()
    masked = f"{key[:6]}***{key[-4:]}" if len(key) > 10 else "***"
    return (
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )


def _cut_off(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Anthropic content cut off at the token limit: a tool call's input incomplete (the API
    sends what it has, here nothing), a text block's JSON cut in half."""
    for block in content:
        if block["type"] == "tool_use":
            block["input"] = {}
        elif block["type"] == "text":
            block["text"] = _cut(block["text"])
    return content


def _cut(text: str) -> str:
    """JSON text cut off midway, as a vendor sends it when it hit the token limit."""
    return text[: max(1, len(text) // 2)]


def _block_list(value: Any) -> list[Any]:
    """A system prompt or message content as a list of blocks (a plain string is none)."""
    return value if isinstance(value, list) else []


def _texts(value: Any) -> Iterator[str]:
    """Every piece of prompt text in a vendor payload's messages, system prompt or contents,
    in order: strings, and the `content` / `text` of message, block and part objects."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, Mapping):
        for key in ("content", "text", "parts"):
            if key in value:
                yield from _texts(value[key])


def _anthropic_problem(payload: Mapping[str, Any]) -> str | None:
    """The request rules of the Messages API that an adapter can break."""
    if not isinstance(payload.get("model"), str):
        return "model: Field required"
    if not isinstance(payload.get("max_tokens"), int):
        return "max_tokens: Field required"
    if not isinstance(payload.get("messages"), list) or not payload["messages"]:
        return "messages: Field required"
    thinking = payload.get("thinking") or {}
    if thinking.get("type") not in ("enabled", "adaptive"):
        return None
    if (payload.get("tool_choice") or {}).get("type") in ("tool", "any"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    if payload.get("temperature") not in (None, 1, 1.0):
        return (
            "`temperature` may only be set to 1 when thinking is enabled. "
            "Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
        )
    budget = thinking.get("budget_tokens")
    if thinking.get("type") == "enabled":
        if not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if budget >= payload["max_tokens"]:
            return "`max_tokens` must be greater than `thinking.budget_tokens`."
    return None


def _vendor(name: str) -> Vendor:
    vendor = _VENDOR_ALIASES.get(name, name)
    for known in VENDORS:
        if known == vendor:
            return known
    raise ValueError(f"unknown vendor {name!r}; expected one of {VENDORS}")


def _route(method: str, path: str) -> Vendor | None:
    if method != "POST":
        return None
    if path == "/v1/chat/completions":
        return "openai"
    if path == "/api/v1/chat/completions":
        return "openrouter"
    if path == "/v1/messages":
        return "anthropic"
    if _GEMINI_PATH.match(path):
        return "google"
    return None


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
