"""Fake LLM vendors that the real vendor SDKs talk to over real HTTP.

`FakeUpstream` (`server.py`) serves the Anthropic, OpenAI, OpenRouter and Gemini (Google AI)
endpoints the service calls: a small Quart app served by Hypercorn on a free loopback port,
from a background thread with its own event loop (`threaded.py`). The SDKs reach it through
their own HTTP stacks (httpx2 for anthropic and openai, httpx2 or httpx for google-genai), so
nothing in the SDKs is patched. Each wire format has its module: `openai_wire.py` (OpenAI and
OpenRouter chat completions), `anthropic_wire.py` (Messages), `gemini_wire.py`
(generateContent); `gemini_batch_wire.py` (with `gemini_batch_jobs.py`) Gemini's batch jobs,
driven by the test through `fake.gemini_batches`; `wire.py` holds what they share and
`schemas.py` the schemas they answer to, checked with `jsonschema`. Requests missing what
the API requires, and (OpenAI only) a `strict` json_schema that breaks the structured-outputs
rules, get the vendor's 400 error.

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

Anthropic's Message Batches (`anthropic_batch_wire.py`, `fake.anthropic_batches`) keep a
state machine per batch that moves only when the test says so; its docstring has the controls.
Batch APIs: `fake.openai_batches` (OpenAI files + batches, `openai_batch_wire.py`) and
`fake.openrouter_batches` (`openrouter_batch_wire.py`) keep batches that move only when the
test says (`advance`, `end(id, outcomes)`, `fail`), with create faults and holds
(`controls`, `batch_controls.py`).

The `fake_upstream` fixture is one server for the session; `clean_fake_upstream` hands it
to a test reset (no faults, no records, the seed rewound).
"""

from tests.support.fake_vendors.schemas import (
    JUDGEMENT_SCHEMA,
    SchemaGenerator,
    camel_schema,
    json_schema,
    schema_errors,
    violate,
)
from tests.support.fake_vendors.server import FakeUpstream, clean_fake_upstream, fake_upstream
from tests.support.fake_vendors.wire import (
    FAULT_KINDS,
    VENDORS,
    FaultKind,
    RecordedRequest,
    Vendor,
)

__all__ = [
    "FAULT_KINDS",
    "JUDGEMENT_SCHEMA",
    "VENDORS",
    "FakeUpstream",
    "FaultKind",
    "RecordedRequest",
    "SchemaGenerator",
    "Vendor",
    "camel_schema",
    "clean_fake_upstream",
    "fake_upstream",
    "json_schema",
    "schema_errors",
    "violate",
]
