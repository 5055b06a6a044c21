"""The fake LLM vendor server, driven by the real vendor SDKs over real HTTP."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from typing import Any, Literal

import anthropic
import httpx2
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from pydantic import BaseModel, ConfigDict, Field

from tests.support import fake_vendors as fake_module
from tests.support.fake_vendors import (
    FakeUpstream,
    SchemaGenerator,
    camel_schema,
    schema_errors,
    violate,
)

# The module's session fixture, under the name the tests ask for.
fake_upstream = fake_module.fake_upstream
clean_fake_upstream = fake_module.clean_fake_upstream


class Judgement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    winner: Literal["Essay A", "Essay B"]
    justification: str = Field(max_length=500)
    confidence: int = Field(ge=1, le=5)


JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "winner": {"type": "string", "enum": ["Essay A", "Essay B"]},
        "justification": {"type": "string", "maxLength": 500},
        "confidence": {"type": "integer", "minimum": 1, "maximum": 5},
    },
    "required": ["winner", "justification", "confidence"],
    "additionalProperties": False,
}
GEMINI_SCHEMA: dict[str, Any] = {
    "type": "OBJECT",
    "properties": {
        "winner": {"type": "STRING", "enum": ["Essay A", "Essay B"]},
        "justification": {"type": "STRING", "maxLength": 500},
        "confidence": {"type": "INTEGER", "minimum": 1, "maximum": 5},
    },
    "required": ["winner", "justification", "confidence"],
}
TOOL: dict[str, Any] = {
    "name": "record_judgement",
    "description": "Record which essay is better.",
    "input_schema": JSON_SCHEMA,
}
MESSAGES: list[Any] = [
    {"role": "system", "content": "You judge essays."},
    {"role": "user", "content": "Essay A: ... Essay B: ..."},
]
Vendor = Literal["openai", "openrouter", "anthropic", "google"]
ALL_VENDORS: tuple[Vendor, ...] = ("openai", "openrouter", "anthropic", "google")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    with FakeUpstream(seed=7, hang_seconds=5) as started:
        yield started


@pytest.fixture
def fake(server: FakeUpstream) -> Iterator[FakeUpstream]:
    server.reset()
    yield server
    server.reset()


# ---- the SDK calls ----------------------------------------------------------------------------


async def ask_openai(base_url: str, *, client_timeout: float = 5.0, **extra: Any) -> Any:
    async with openai.AsyncOpenAI(
        api_key="k", base_url=base_url, max_retries=0, timeout=client_timeout
    ) as client:
        completion = await client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            response_format=extra.pop(
                "response_format",
                {
                    "type": "json_schema",
                    "json_schema": {"name": "judgement", "schema": JSON_SCHEMA, "strict": True},
                },
            ),
            **extra,
        )
        return completion


async def ask_anthropic(base_url: str, *, client_timeout: float = 5.0, **extra: Any) -> Any:
    async with anthropic.AsyncAnthropic(
        api_key="k", base_url=base_url, max_retries=0, timeout=client_timeout
    ) as client:
        arguments: dict[str, Any] = {
            "model": "claude-test",
            "max_tokens": 2048,
            "system": [
                {
                    "type": "text",
                    "text": "You judge essays.",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            "messages": [{"role": "user", "content": "Essay A: ... Essay B: ..."}],
            "tools": [TOOL],
            "tool_choice": {"type": "tool", "name": TOOL["name"]},
            **extra,
        }
        return await client.messages.create(**arguments)


async def ask_google(base_url: str, *, client_timeout: float = 5.0, **config: Any) -> Any:
    client = genai.Client(
        api_key="k",
        http_options=genai_types.HttpOptions(base_url=base_url, timeout=int(client_timeout * 1000)),
    )
    try:
        settings: dict[str, Any] = {
            "system_instruction": "You judge essays.",
            "response_mime_type": "application/json",
            "response_schema": GEMINI_SCHEMA,
            "temperature": 0.2,
            **config,
        }
        return await client.aio.models.generate_content(
            model="gemini-test",
            contents="Essay A: ... Essay B: ...",
            config=genai_types.GenerateContentConfig(**settings),
        )
    finally:
        await client.aio.aclose()
        client.close()


async def judge(fake: FakeUpstream, vendor: Vendor, *, client_timeout: float = 5.0) -> Any:
    """One structured call through the vendor's SDK; returns the structured answer."""
    if vendor in ("openai", "openrouter"):
        base = fake.openai_base_url if vendor == "openai" else fake.openrouter_base_url
        completion = await ask_openai(base, client_timeout=client_timeout)
        content = completion.choices[0].message.content
        return json.loads(content) if content else None
    if vendor == "anthropic":
        message = await ask_anthropic(fake.anthropic_base_url, client_timeout=client_timeout)
        blocks = [block for block in message.content if block.type == "tool_use"]
        return blocks[0].input if blocks else None
    response = await ask_google(fake.google_base_url, client_timeout=client_timeout)
    return json.loads(response.text) if response.text else None


# ---- addresses --------------------------------------------------------------------------------


def test_base_urls_follow_each_sdk_convention(fake: FakeUpstream) -> None:
    assert fake.base_url == f"http://127.0.0.1:{fake.port}"
    assert fake.openai_base_url == f"{fake.base_url}/v1"
    assert fake.openrouter_base_url == f"{fake.base_url}/api/v1"
    assert fake.anthropic_base_url == fake.base_url
    assert fake.google_base_url == fake.base_url


# ---- happy paths ------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["openai", "openrouter"])
async def test_openai_sdk_gets_structured_output(fake: FakeUpstream, vendor: Vendor) -> None:
    base = fake.openai_base_url if vendor == "openai" else fake.openrouter_base_url

    completion = await ask_openai(base, temperature=0.3, max_completion_tokens=300)

    assert completion.id.startswith("gen-" if vendor == "openrouter" else "chatcmpl-")
    assert completion.choices[0].finish_reason == "stop"
    Judgement.model_validate_json(completion.choices[0].message.content or "")
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    sent = fake.last(vendor)
    assert sent.path == ("/v1" if vendor == "openai" else "/api/v1") + "/chat/completions"
    assert sent.headers["authorization"] == "Bearer k"
    assert sent.model == "gpt-test"
    assert sent.json["messages"] == MESSAGES
    assert sent.json["response_format"]["json_schema"]["schema"] == JSON_SCHEMA
    assert sent.json["temperature"] == 0.3
    assert sent.json["max_completion_tokens"] == 300


async def test_openai_reports_cached_tokens_for_a_repeated_system_prompt(
    fake: FakeUpstream,
) -> None:
    await ask_openai(fake.openai_base_url)
    again = await ask_openai(fake.openai_base_url, reasoning_effort="low")

    assert again.usage is not None
    assert again.usage.prompt_tokens_details is not None
    assert again.usage.prompt_tokens_details.cached_tokens > 0
    assert again.usage.completion_tokens_details is not None
    assert again.usage.completion_tokens_details.reasoning_tokens > 0
    assert fake.last("openai").json["reasoning_effort"] == "low"


async def test_openai_json_object_mode_answers_a_judgement(fake: FakeUpstream) -> None:
    completion = await ask_openai(fake.openai_base_url, response_format={"type": "json_object"})

    Judgement.model_validate_json(completion.choices[0].message.content or "")


async def test_openai_rejects_a_schema_that_strict_mode_forbids(fake: FakeUpstream) -> None:
    loose = {k: v for k, v in JSON_SCHEMA.items() if k != "additionalProperties"}
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "judgement", "schema": loose, "strict": True},
    }

    with pytest.raises(openai.BadRequestError, match="additionalProperties"):
        await ask_openai(fake.openai_base_url, response_format=response_format)


async def test_anthropic_sdk_gets_the_forced_tool_call(fake: FakeUpstream) -> None:
    # anthropic 2.x's messages.create() has no `temperature` parameter any more
    message = await ask_anthropic(fake.anthropic_base_url, extra_body={"temperature": 0.0})

    assert message.id.startswith("msg_")
    assert message.stop_reason == "tool_use"
    assert [block.type for block in message.content] == ["tool_use"]
    block = message.content[0]
    assert block.name == TOOL["name"]
    assert block.id.startswith("toolu_")
    Judgement.model_validate(block.input)
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0
    assert message.usage.cache_creation_input_tokens > 0
    assert message.usage.cache_read_input_tokens == 0
    sent = fake.last("anthropic")
    assert sent.path == "/v1/messages"
    assert "anthropic-version" in sent.headers
    assert "k" in (sent.headers.get("x-api-key"), sent.headers.get("authorization", "")[7:])
    assert sent.json["tool_choice"] == {"type": "tool", "name": TOOL["name"]}
    assert sent.json["tools"][0]["input_schema"] == JSON_SCHEMA
    assert sent.json["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent.json["temperature"] == 0.0

    again = await ask_anthropic(fake.anthropic_base_url)
    assert again.usage.cache_read_input_tokens == message.usage.cache_creation_input_tokens
    assert again.usage.cache_creation_input_tokens == 0


async def test_anthropic_thinking_uses_the_tool_with_auto_choice(fake: FakeUpstream) -> None:
    message = await ask_anthropic(
        fake.anthropic_base_url,
        tool_choice={"type": "auto"},
        thinking={"type": "enabled", "budget_tokens": 1024},
    )

    assert [block.type for block in message.content] == ["thinking", "tool_use"]
    Judgement.model_validate(message.content[1].input)


async def test_anthropic_structured_output_format_answers_json_text(fake: FakeUpstream) -> None:
    message = await ask_anthropic(
        fake.anthropic_base_url,
        tools=anthropic.omit,
        tool_choice=anthropic.omit,
        output_config={"format": {"type": "json_schema", "schema": JSON_SCHEMA}},
    )

    assert message.stop_reason == "end_turn"
    assert [block.type for block in message.content] == ["text"]
    Judgement.model_validate_json(message.content[0].text)


async def test_anthropic_rejects_thinking_with_a_forced_tool(fake: FakeUpstream) -> None:
    with pytest.raises(anthropic.BadRequestError, match="Thinking may not be enabled"):
        await ask_anthropic(
            fake.anthropic_base_url, thinking={"type": "enabled", "budget_tokens": 1024}
        )


async def test_google_sdk_gets_json_for_an_openapi_schema(fake: FakeUpstream) -> None:
    response = await ask_google(fake.google_base_url, max_output_tokens=300)

    Judgement.model_validate_json(response.text or "")
    assert response.candidates[0].finish_reason == genai_types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count
    assert usage.candidates_token_count
    assert usage.total_token_count
    sent = fake.last("google")
    assert sent.path == "/v1/models/gemini-test:generateContent"
    assert sent.model == "gemini-test"
    assert sent.headers["x-goog-api-key"] == "k"
    config = sent.json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"]["type"] == "OBJECT"
    assert config["maxOutputTokens"] == 300
    assert sent.json["systemInstruction"]["parts"][0]["text"] == "You judge essays."

    again = await ask_google(fake.google_base_url)
    assert again.usage_metadata is not None
    assert again.usage_metadata.cached_content_token_count


async def test_google_sdk_with_a_json_schema_a_model_class_and_thoughts(
    fake: FakeUpstream,
) -> None:
    by_json_schema = await ask_google(
        fake.google_base_url, response_schema=None, response_json_schema=JSON_SCHEMA
    )
    by_model = await ask_google(
        fake.google_base_url,
        response_schema=Judgement,
        thinking_config=genai_types.ThinkingConfig(thinking_budget=1024, include_thoughts=True),
    )

    Judgement.model_validate_json(by_json_schema.text or "")
    assert isinstance(by_model.parsed, Judgement)
    parts = by_model.candidates[0].content.parts
    assert [bool(part.thought) for part in parts] == [True, False]
    assert fake.requests[0].json["generationConfig"]["responseJsonSchema"] == JSON_SCHEMA


async def test_answers_vary_and_a_reset_replays_them(fake: FakeUpstream) -> None:
    first = [await judge(fake, "openai") for _ in range(6)]
    fake.reset()
    replayed = [await judge(fake, "openai") for _ in range(6)]

    assert len({json.dumps(answer, sort_keys=True) for answer in first}) > 1
    assert replayed == first


async def test_concurrent_requests_over_kept_alive_connections(fake: FakeUpstream) -> None:
    async with openai.AsyncOpenAI(
        api_key="k", base_url=fake.openai_base_url, max_retries=0
    ) as client:

        async def one() -> str:
            completion = await client.chat.completions.create(
                model="gpt-test", messages=MESSAGES, response_format={"type": "json_object"}
            )
            return completion.choices[0].message.content or ""

        answers = await asyncio.gather(*(one() for _ in range(20)))
        answers += [await one() for _ in range(5)]

    assert all(Judgement.model_validate_json(answer) for answer in answers)
    assert len(fake.requests_for("openai")) == 25


# ---- faults -----------------------------------------------------------------------------------

STATUS_ERRORS: dict[str, dict[Vendor, tuple[type[Exception], int]]] = {
    "server_error": {
        "openai": (openai.InternalServerError, 500),
        "openrouter": (openai.InternalServerError, 500),
        "anthropic": (anthropic.InternalServerError, 500),
        "google": (genai_errors.ServerError, 500),
    },
    "unavailable": {
        "openai": (openai.InternalServerError, 503),
        "openrouter": (openai.InternalServerError, 503),
        "anthropic": (anthropic.ServiceUnavailableError, 503),
        "google": (genai_errors.ServerError, 503),
    },
    "overloaded": {
        "openai": (openai.InternalServerError, 503),
        "openrouter": (openai.InternalServerError, 503),
        "anthropic": (anthropic.OverloadedError, 529),
        "google": (genai_errors.ServerError, 503),
    },
    "rate_limit": {
        "openai": (openai.RateLimitError, 429),
        "openrouter": (openai.RateLimitError, 429),
        "anthropic": (anthropic.RateLimitError, 429),
        "google": (genai_errors.ClientError, 429),
    },
    "auth": {
        "openai": (openai.AuthenticationError, 401),
        "openrouter": (openai.AuthenticationError, 401),
        "anthropic": (anthropic.AuthenticationError, 401),
        "google": (genai_errors.ClientError, 401),
    },
    "bad_request": {
        "openai": (openai.BadRequestError, 400),
        "openrouter": (openai.BadRequestError, 400),
        "anthropic": (anthropic.BadRequestError, 400),
        "google": (genai_errors.ClientError, 400),
    },
}
GOOGLE_STATUS = {
    "server_error": "INTERNAL",
    "unavailable": "UNAVAILABLE",
    "overloaded": "UNAVAILABLE",
    "rate_limit": "RESOURCE_EXHAUSTED",
    "auth": "UNAUTHENTICATED",
    "bad_request": "INVALID_ARGUMENT",
}
ANTHROPIC_TYPE = {
    "server_error": "api_error",
    "unavailable": "overloaded_error",
    "overloaded": "overloaded_error",
    "rate_limit": "rate_limit_error",
    "auth": "authentication_error",
    "bad_request": "invalid_request_error",
}


@pytest.mark.parametrize("kind", list(STATUS_ERRORS))
@pytest.mark.parametrize("vendor", ALL_VENDORS)
async def test_status_faults_raise_the_sdk_errors(
    fake: FakeUpstream, vendor: Vendor, kind: Any
) -> None:
    error_class, status = STATUS_ERRORS[kind][vendor]
    fake.fail(vendor, kind)

    with pytest.raises(error_class) as caught:
        await judge(fake, vendor)

    error: Any = caught.value
    if vendor == "google":
        assert error.code == status
        assert error.status == GOOGLE_STATUS[kind]
    else:
        assert error.status_code == status
    if vendor == "anthropic":
        assert error.type == ANTHROPIC_TYPE[kind]
        assert error.request_id.startswith("req_")
    if vendor in ("openai", "openrouter"):
        assert error.message
        assert error.type
    retry_after = error.response.headers.get("retry-after")
    assert retry_after == ("2" if kind == "rate_limit" else None)
    assert fake.last(vendor).fault == kind


async def test_google_rate_limit_carries_retry_info(fake: FakeUpstream) -> None:
    fake.fail("google", "rate_limit")

    with pytest.raises(genai_errors.ClientError) as caught:
        await judge(fake, "google")

    assert caught.value.details["error"]["details"][0]["retryDelay"] == "2s"


TIMEOUT_ERRORS: dict[Vendor, type[Exception]] = {
    "openai": openai.APITimeoutError,
    "openrouter": openai.APITimeoutError,
    "anthropic": anthropic.APITimeoutError,
    "google": httpx2.TimeoutException,
}


@pytest.mark.parametrize("vendor", ALL_VENDORS)
async def test_a_hanging_upstream_trips_the_client_timeout(
    fake: FakeUpstream, vendor: Vendor
) -> None:
    fake.fail(vendor, "timeout", times=1)
    started = time.monotonic()

    with pytest.raises(TIMEOUT_ERRORS[vendor]):
        await judge(fake, vendor, client_timeout=0.3)

    assert time.monotonic() - started < 3
    assert await judge(fake, vendor) is not None


async def test_a_timeout_fault_answers_after_hang_seconds(fake: FakeUpstream) -> None:
    fake.hang_seconds = 0.2
    try:
        fake.fail("anthropic", "timeout")
        started = time.monotonic()
        Judgement.model_validate(await judge(fake, "anthropic"))
        assert time.monotonic() - started >= 0.2
    finally:
        fake.hang_seconds = 5


@pytest.mark.parametrize("vendor", ALL_VENDORS)
async def test_a_malformed_body_fails_to_parse(fake: FakeUpstream, vendor: Vendor) -> None:
    fake.fail(vendor, "malformed")

    # None of the SDKs wraps it: each lets json's error through.
    with pytest.raises(json.JSONDecodeError):
        await judge(fake, vendor)


@pytest.mark.parametrize("vendor", ALL_VENDORS)
async def test_schema_violation_is_well_formed_but_breaks_the_schema(
    fake: FakeUpstream, vendor: Vendor
) -> None:
    fake.fail(vendor, "schema_violation")

    answers = [await judge(fake, vendor) for _ in range(4)]

    for answer in answers:
        assert isinstance(answer, dict)
        assert schema_errors(JSON_SCHEMA, answer)
        with pytest.raises(ValueError, match="validation error"):
            Judgement.model_validate(answer)


@pytest.mark.parametrize("vendor", ALL_VENDORS)
async def test_empty_answers(fake: FakeUpstream, vendor: Vendor) -> None:
    fake.fail(vendor, "empty")

    assert await judge(fake, vendor) is None


async def test_anthropic_empty_answer_has_no_content(fake: FakeUpstream) -> None:
    fake.fail("anthropic", "empty")

    message = await ask_anthropic(fake.anthropic_base_url)

    assert message.content == []
    assert message.stop_reason == "end_turn"


async def test_times_counts_down_then_recovers(fake: FakeUpstream) -> None:
    fake.fail("anthropic", "server_error", times=2)

    for _ in range(2):
        with pytest.raises(anthropic.InternalServerError):
            await judge(fake, "anthropic")
    Judgement.model_validate(await judge(fake, "anthropic"))
    assert [record.fault for record in fake.requests] == ["server_error", "server_error", None]


async def test_a_fault_for_every_vendor_until_healed(fake: FakeUpstream) -> None:
    fake.fail(None, "unavailable")
    fake.fail("google", "auth", times=1)

    with pytest.raises(openai.InternalServerError):
        await judge(fake, "openrouter")
    with pytest.raises(genai_errors.ClientError):
        await judge(fake, "google")  # the vendor's own fault wins...
    with pytest.raises(genai_errors.ServerError):
        await judge(fake, "google")  # ...and the shared one is back once it is spent

    fake.heal()

    for vendor in ALL_VENDORS:
        Judgement.model_validate(await judge(fake, vendor))


def test_fail_rejects_unknown_names(fake: FakeUpstream) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        fake.fail("openai", "explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown vendor"):
        fake.fail("mistral", "auth")
    with pytest.raises(ValueError, match="times"):
        fake.fail("openai", "auth", times=0)
    fake.fail("gemini", "auth")  # an alias of "google"
    fake.heal("google")


async def test_records_every_request_with_the_body_sent(fake: FakeUpstream) -> None:
    for vendor in ALL_VENDORS:
        await judge(fake, vendor)

    assert [record.vendor for record in fake.requests] == list(ALL_VENDORS)
    assert all(record.method == "POST" for record in fake.requests)
    assert all(json.loads(record.body) == record.json for record in fake.requests)
    assert fake.last().vendor == "google"
    fake.clear()
    assert fake.requests == []
    with pytest.raises(AssertionError, match="no request"):
        fake.last("openai")


# ---- lifecycle and fixtures ---------------------------------------------------------------------


async def test_stop_ends_a_hanging_request_at_once() -> None:
    server = FakeUpstream(hang_seconds=30).start()
    server.fail(None, "timeout")
    call = asyncio.ensure_future(judge(server, "openai", client_timeout=20))
    while not server.requests:  # noqa: ASYNC110 - the server records from its own thread
        await asyncio.sleep(0.01)
    started = time.monotonic()

    await asyncio.to_thread(server.stop)

    assert time.monotonic() - started < 2
    with pytest.raises(openai.APIConnectionError):
        await call
    server.stop()  # a second stop does nothing
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url


async def test_session_fixture_is_handed_over_clean(clean_fake_upstream: FakeUpstream) -> None:
    assert clean_fake_upstream.requests == []
    Judgement.model_validate(await judge(clean_fake_upstream, "openrouter"))
    clean_fake_upstream.fail(None, "auth")


async def test_the_next_user_of_the_session_fixture_gets_it_healed(
    clean_fake_upstream: FakeUpstream,
) -> None:
    Judgement.model_validate(await judge(clean_fake_upstream, "anthropic"))


# ---- the schema generator -----------------------------------------------------------------------


def test_generator_follows_refs_arrays_numbers_and_optional_fields() -> None:
    schema = {
        "$defs": {"Winner": {"type": "string", "enum": ["Essay A", "Essay B"]}},
        "type": "object",
        "properties": {
            "winner": {"$ref": "#/$defs/Winner"},
            "scores": {
                "type": "array",
                "items": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                "minItems": 2,
                "maxItems": 4,
            },
            "note": {"anyOf": [{"type": "string", "minLength": 3}, {"type": "null"}]},
            "flag": {"type": ["boolean", "null"]},
            "fixed": {"const": 3},
        },
        "required": ["winner", "scores"],
    }
    generator = SchemaGenerator(random.Random(1))

    instances = [generator.instance(schema) for _ in range(30)]

    assert all(schema_errors(schema, instance) == [] for instance in instances)
    assert {"note" in instance for instance in instances} == {True, False}


def test_generator_reads_gemini_snake_case_and_upper_case_types() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "short_text": {"type": "STRING", "max_length": 5},
            "count": {"type": "INTEGER", "minimum": 1.0, "maximum": 3.0},
        },
        "property_ordering": ["short_text", "count"],
        "required": ["short_text", "count"],
    }
    assert camel_schema(schema)["propertyOrdering"] == ["short_text", "count"]
    generator = SchemaGenerator(random.Random(2))

    for _ in range(20):
        instance = generator.instance(camel_schema(schema))
        assert schema_errors(schema, instance) == []
        assert len(instance["short_text"]) <= 5
        assert 1 <= instance["count"] <= 3


def test_violations_break_the_schema_in_the_ways_described() -> None:
    rng = random.Random(3)
    valid = {"winner": "Essay A", "justification": "Fine.", "confidence": 3}

    broken = [violate(JSON_SCHEMA, valid, rng) for _ in range(40)]

    assert all(schema_errors(JSON_SCHEMA, answer) for answer in broken)
    assert {"winner": "Essay C", "justification": "Fine.", "confidence": 3} in broken
    assert {"winner": "Essay A", "justification": "Fine.", "confidence": 9} in broken
    assert {"winner": "Essay A", "confidence": 3} in broken


def test_every_json_schema_keyword_is_checked_and_an_unsatisfied_one_is_refused() -> None:
    digits = {"type": "string", "pattern": "^[0-9]+$"}
    gemini = {"type": "OBJECT", "properties": {"n": {"type": "INTEGER", "nullable": True}}}

    assert schema_errors(digits, "essay")
    assert schema_errors(digits, "42") == []
    assert schema_errors(gemini, {"n": None}) == []
    assert schema_errors(gemini, {"n": "one"})
    with pytest.raises(ValueError, match="no valid instance"):
        SchemaGenerator(random.Random(4)).instance(digits)  # not answered wrongly
