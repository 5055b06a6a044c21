"""What the OpenAI-compatible adapters send: the chat-completions request, its structured
output formats, the mapping of the service's efforts and verbosities, and the SDK client
(`build_client`, with `max_retries=0`: retrying is the queue's and the breaker's decision)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import openai
from openai.types.chat import ChatCompletionMessageParam
from openai.types.chat.completion_create_params import ResponseFormat

from common_core.enums import OutputVerbosity, ReasoningEffort
from services.llm_provider_service.errors import ProviderNotConfiguredError
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.providers.judgement import JUDGEMENT_SCHEMA, TOOL_NAME
from services.llm_provider_service.providers.vendor_http import VendorHttpTransport, sdk_http_client
from services.llm_provider_service.settings import ProviderSettings

OpenAIEffort = Literal["none", "minimal", "low", "medium", "high"]
Verbosity = Literal["low", "medium", "high"]
ServiceTier = Literal["flex"]

DEFAULT_MAX_TOKENS = 1024
"""Output budget when the caller sets none: a judgement needs about 200 tokens."""
DEFAULT_REASONING_MAX_TOKENS = 8192
"""Budget for reasoning models, whose hidden reasoning tokens count against the same limit."""

EFFORTS: Mapping[ReasoningEffort, OpenAIEffort] = {
    ReasoningEffort.NONE: "none",
    ReasoningEffort.LOW: "low",
    ReasoningEffort.MEDIUM: "medium",
    ReasoningEffort.HIGH: "high",
}
VERBOSITIES: Mapping[OutputVerbosity, Verbosity] = {
    OutputVerbosity.LOW: "low",
    OutputVerbosity.MEDIUM: "medium",
    OutputVerbosity.HIGH: "high",
}


_JSON_SCHEMA_FORMAT: ResponseFormat = {
    "type": "json_schema",
    "json_schema": {"name": TOOL_NAME, "schema": JUDGEMENT_SCHEMA, "strict": True},
}
_JSON_OBJECT_FORMAT: ResponseFormat = {"type": "json_object"}


def json_schema_format() -> ResponseFormat:
    """Structured outputs: the judgement schema, enforced by the vendor (`strict`). Built
    once and shared by every request: the body is only ever serialised, never changed."""
    return _JSON_SCHEMA_FORMAT


def json_object_format() -> ResponseFormat:
    """JSON mode: any JSON object; the schema goes into the prompt, and the answer is checked
    against it when it is read (`openai_answer.py`)."""
    return _JSON_OBJECT_FORMAT


def chat_messages(system_prompt: str, user_prompt: str) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": user_prompt},
    ]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat-completions request; None fields are left out of the body."""

    model: str
    messages: list[ChatCompletionMessageParam]
    response_format: ResponseFormat
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    reasoning_effort: OpenAIEffort | None = None
    verbosity: Verbosity | None = None
    prompt_cache_key: str | None = None
    service_tier: ServiceTier | None = None
    extra_body: dict[str, Any] | None = None

    def body(self) -> dict[str, object]:
        """The JSON body, its keys in the order `chat.completions.create` writes them (so the
        bytes on the wire are the same as the SDK's own), None fields left out; `extra_body`
        is merged over it by the SDK, as for `create`. The values are plain JSON already, so
        the SDK's per-call transform of typed parameters has nothing to do (see `_send`)."""
        body: dict[str, object] = {"model": self.model}
        if self.service_tier is not None:
            body["service_tier"] = self.service_tier  # where `create` writes it
        body["messages"] = self.messages
        for key, value in (
            ("max_completion_tokens", self.max_completion_tokens),
            ("max_tokens", self.max_tokens),
            ("prompt_cache_key", self.prompt_cache_key),
            ("reasoning_effort", self.reasoning_effort),
            ("response_format", self.response_format),
            ("temperature", self.temperature),
            ("verbosity", self.verbosity),
        ):
            if value is not None:
                body[key] = value
        return body

    def wire_body(self) -> dict[str, object]:
        """The whole JSON object that reaches the vendor: `body()` with `extra_body` merged
        over it at the top level, as the SDK merges it. A batch entry carries this."""
        return {**self.body(), **(self.extra_body or {})}


def build_client(
    config: ProviderSettings,
    *,
    default_base_url: str | None = None,
    default_headers: Mapping[str, str] | None = None,
    http_transport: VendorHttpTransport = "lean",
) -> openai.AsyncOpenAI:
    """An SDK client for `config`: its key, base URL and timeout, and no hidden retries; its
    HTTP under the SDK on `LeanTransport` unless `http_transport` is "httpx" (`vendor_http`).

    Raises `ProviderNotConfiguredError` without an API key.
    """
    if config.api_key is None:
        raise ProviderNotConfiguredError(config.provider, f"{config.provider.value} has no API key")
    base_url = config.base_url or default_base_url
    http_client = sdk_http_client(
        openai.DefaultAsyncHttpxClient,
        http_transport,
        base_url=base_url,
        timeout=config.timeout_seconds,
        max_connections=config.max_concurrency,
    )
    return openai.AsyncOpenAI(
        api_key=config.api_key.get_secret_value(),
        base_url=base_url,
        timeout=config.timeout_seconds,
        max_retries=0,
        default_headers=dict(default_headers) if default_headers else None,
        http_client=http_client,
    )


def prompt_cache_key(prompt: ComparisonPrompt) -> str | None:
    """A key naming the prompt's cacheable prefix (the shared rubric and instructions), so
    that the vendor routes requests that share it to the same cache; None without one.
    OpenAI caches a prompt's longest seen prefix by itself: the key only improves the hit
    rate. Only the prompt's input tokens are cached; every answer is fresh."""
    prefix = prompt.cached_prefix
    if not prefix:
        return None
    digest = hashlib.sha256("\x00".join(part.text for part in prefix).encode())
    return f"llmps-{digest.hexdigest()[:32]}"
