"""What the OpenAI and OpenRouter adapters share: one chat-completions call, read strictly.

Subclasses decide what to send (`_build_request`); this module makes the call through the
`openai` SDK under the concurrency limit (`CallSlots`) and an overall deadline of
`timeout_seconds` plus one second, which the wait for a slot counts toward; translates every
SDK failure into the service's errors (`raise ... from`), and reads the completion into a
`Judgement` in one place (`_judge`, under `ask_until_valid`'s guard: a 200 body of another shape is
`InvalidProviderResponseError`), re-asking (a fresh call) at most `invalid_response_reasks`
times for an answer outside the schema. An answer cut off at the token limit
(`finish_reason` "length") is `MaxTokensTooLowError` (422, the caller's own limit). The
client has `max_retries=0` (`build_client`): retrying is the queue's and the breaker's
decision. The request's pieces (formats, efforts, the client) are in `openai_request.py`, the
reading of the answer in `openai_answer.py`.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import ClassVar

import httpx2
import openai
from openai.types.chat import ChatCompletion

from common_core.api_models import LLMConfigOverrides, TokenUsage
from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    MaxTokensTooLowError,
    ProviderError,
)
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.providers.call_slots import CallSlots, call_timeout
from services.llm_provider_service.providers.http_errors import connection_error, timeout_error
from services.llm_provider_service.providers.judgement import ask_until_valid
from services.llm_provider_service.providers.openai_answer import (
    judgement_from_completion,
    not_a_completion,
    read_completion,
    status_error,
    usage_or_zero,
)
from services.llm_provider_service.providers.openai_request import ChatRequest
from services.llm_provider_service.settings import ProviderSettings

logger = logging.getLogger(__name__)

_DEADLINE_GRACE_SECONDS = 1.0
"""The overall deadline of an attempt (slot wait included) is the timeout plus this."""


class OpenAICompatibleProvider(ABC):
    """An `LLMProvider` over an OpenAI-compatible chat-completions endpoint.

    `client` must have `max_retries=0` (the composition root builds it so, e.g. with
    `build_client`): hidden SDK retries would hide outages from the circuit breaker and
    multiply calls. Calls run under `CallSlots(config.max_concurrency)`.
    """

    _provider: ClassVar[LLMProviderType]

    def __init__(self, client: openai.AsyncOpenAI, config: ProviderSettings) -> None:
        if client.max_retries:
            logger.warning(
                "%s client has max_retries=%d; the service expects 0 (one request per attempt)",
                self._provider.value,
                client.max_retries,
            )
        self._client = client
        self._config = config
        self._slots = CallSlots(self._provider, config.max_concurrency)

    @property
    def provider(self) -> LLMProviderType:
        return self._provider

    @property
    def default_model(self) -> str:
        return self._config.default_model

    async def compare(self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides) -> Judgement:
        """One fresh call; up to `invalid_response_reasks` more for answers outside the schema.

        Raises only `ProviderError`s. The judgement's `model` is the one the vendor says
        answered (it may name a dated snapshot or the routed model), else the requested one.
        """
        request = self._build_request(prompt, overrides)
        return await ask_until_valid(
            self._provider,
            self._config.invalid_response_reasks,
            lambda: self._attempt(request),
            usage_or_zero,
            lambda completion, spent: self._judge(completion, request, spent),
        )

    def request_for(self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides) -> ChatRequest:
        """The request `compare` sends for this prompt and these overrides (a batch entry
        carries exactly this, `ChatRequest.wire_body`)."""
        return self._build_request(prompt, overrides)

    @abstractmethod
    def _build_request(
        self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides
    ) -> ChatRequest:
        """The request for this prompt and these overrides; unsupported overrides are left
        out with a debug log, so that they never cause an upstream 400."""

    async def _attempt(self, request: ChatRequest) -> ChatCompletion:
        timeout = self._config.timeout_seconds
        try:
            async with (
                self._slots.slot(timeout + _DEADLINE_GRACE_SECONDS) as left,
                asyncio.timeout(left),
            ):
                return await self._send(request, seconds=call_timeout(timeout, left))
        except TimeoutError as exc:  # the overall deadline, past the SDK's own timeout
            raise timeout_error(self._provider, timeout) from exc

    def _judge(
        self, completion: ChatCompletion, request: ChatRequest, spent: TokenUsage
    ) -> Judgement:
        """The judgement, with the tokens of every attempt (re-asks are billed too)."""
        try:
            judgement = judgement_from_completion(self._provider, completion, request.model)
        except InvalidProviderResponseError as exc:
            if exc.details.get("finish_reason") == "length":
                raise MaxTokensTooLowError(
                    self._provider,
                    max_tokens=request.max_completion_tokens or request.max_tokens,
                    stop_reason="length",
                    model=request.model,
                ) from exc
            raise
        except ProviderError:
            raise
        except Exception as exc:  # a 200 body that is JSON but not a chat completion
            raise not_a_completion(self._provider, exc) from exc
        return judgement.model_copy(update={"token_usage": spent})

    async def _send(self, request: ChatRequest, *, seconds: float) -> ChatCompletion:
        """One POST of `request.body()` through the SDK's own `post`, the call
        `chat.completions.create` makes once it has transformed its typed parameters: the
        same headers, auth, timeout and body bytes, without walking the schema and the
        messages key by key on every call (about a sixth of the service's CPU per request in
        the hot-path profile, `benchmarks/profiles/`); the answer is read by
        `read_completion`, the same `ChatCompletion` in one validating pass."""
        provider = self._provider
        options: openai.RequestOptions = {"timeout": seconds, "security": {"bearer_auth": True}}
        if request.extra_body is not None:
            options["extra_json"] = request.extra_body
        try:
            response = await self._client.post(
                "/chat/completions", cast_to=httpx2.Response, body=request.body(), options=options
            )
            return read_completion(self._client, response)
        except openai.APITimeoutError as exc:
            raise timeout_error(provider, self._config.timeout_seconds) from exc
        except openai.APIConnectionError as exc:
            raise connection_error(provider, f"{exc.message} ({exc.__cause__!r})") from exc
        except openai.APIStatusError as exc:
            raise status_error(provider, exc) from exc
        except (openai.APIResponseValidationError, ValueError) as exc:  # JSONDecodeError too
            raise not_a_completion(provider, exc) from exc
        except Exception as exc:  # the contract: nothing but ProviderError leaves `compare`
            logger.exception("unexpected error calling %s", provider.value)
            raise InvalidProviderResponseError(
                provider, f"{provider.value} call failed unexpectedly: {type(exc).__name__}"
            ) from exc
