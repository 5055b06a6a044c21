"""The checks a comparison request passes before anything is called or queued."""

from __future__ import annotations

import re
from dataclasses import dataclass

from common_core.api_models import ComparisonRequest, LLMConfigOverrides
from common_core.enums import CacheMode, LLMProviderType, ProcessingMode
from services.llm_provider_service.batch.registry import BatchAPIs
from services.llm_provider_service.callers import Caller
from services.llm_provider_service.delivery.webhook_policy import WebhookPolicy
from services.llm_provider_service.errors import (
    BatchNotSupportedError,
    CacheNotAllowedError,
    CallbackNotAllowedError,
    RequestValidationError,
)
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.prompt import render_prompt
from services.llm_provider_service.provider_registry import ProviderRegistry
from services.llm_provider_service.settings import Settings

_KAFKA_TOPIC = re.compile(r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,249}")


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request that passed the rules, as it will be served."""

    request: ComparisonRequest  # with its processing mode decided
    provider: LLMProviderType  # the provider_override, else the default
    prompt: ComparisonPrompt  # rendered in the caller's order


class RequestRules:
    """What the settings, the providers and the caller's policy allow a request to ask for.

    `admit` applies them in the order `architecture.md` ("Processing modes") lists; when
    it raises, nothing has been called or queued.
    """

    def __init__(
        self,
        settings: Settings,
        webhook_policy: WebhookPolicy,
        providers: ProviderRegistry,
        batch_apis: BatchAPIs,
    ) -> None:
        self._settings = settings
        self._webhook_policy = webhook_policy
        self._providers = providers
        self._batch_apis = batch_apis

    def admit(self, request: ComparisonRequest, caller: Caller | None) -> Admitted:
        """The request with its caller's default mode when it names none (else
        DEFAULT_PROCESSING_MODE), its provider and its prompt.

        Raises, in this order: `CallerLimitError` (422) for a priority above the caller's
        cap; `RequestValidationError` (400, field `cache_mode`) for a batch request with a
        cache mode other than `none` (every batch entry is its own fresh call);
        `CacheNotAllowedError` (400) for `cache_mode=development` without
        ENABLE_RESPONSE_CACHE; `RequestValidationError` (400) for `ttl_seconds` above
        QUEUE_MAX_TTL_SECONDS (BATCH_MAX_TTL_SECONDS for a batch request);
        `CallbackNotAllowedError` for a callback topic or URL the settings (400) or the
        caller (403) do not allow; `ProviderNotConfiguredError` (503, `PROVIDER_DISABLED` or
        `PROVIDER_NOT_CONFIGURED`) for a provider that cannot serve; `BatchNotSupportedError`
        (400) for a batch request whose provider or model has no Batch API here; and
        `RequestValidationError` (400) for a prompt that names a missing essay. `caller` is
        None in an open service.
        """
        request = self._with_caller_policy(request, caller)
        self._check_modes(request, caller)
        overrides = request.llm_config_overrides
        provider = self._providers.resolve(overrides.provider_override if overrides else None)
        if request.processing_mode is ProcessingMode.BATCH:
            self._check_batch_api(provider, request)
        # Rendered once, here, in the caller's order: a broken prompt is refused before
        # anything is queued or called, and this rendering names the request (prompt_sha256,
        # the development cache) whichever order the provider is shown.
        return Admitted(request, provider, render_prompt(request))

    def _with_caller_policy(
        self, request: ComparisonRequest, caller: Caller | None
    ) -> ComparisonRequest:
        """The request with its caller's default mode; `CallerLimitError` (422) for a
        priority above the caller's `max_priority`."""
        if caller is not None:
            caller.check_priority(request.priority)
        if "processing_mode" in request.model_fields_set:
            return request
        own = caller.policy.default_processing_mode if caller else None
        mode = own or self._settings.default_processing_mode
        return request.model_copy(update={"processing_mode": mode})

    def ttl_seconds(self, request: ComparisonRequest) -> int:
        """How long `request` may wait in the queue: its own `ttl_seconds`, else its lane's
        default (BATCH_DEFAULT_TTL_SECONDS for a batch request, else QUEUE_REQUEST_TTL_SECONDS)."""
        if request.ttl_seconds is not None:
            return request.ttl_seconds
        if request.processing_mode is ProcessingMode.BATCH:
            return self._settings.batch.default_ttl_seconds
        return self._settings.queue.request_ttl_seconds

    def _max_ttl_seconds(self, request: ComparisonRequest) -> tuple[int, str]:
        if request.processing_mode is ProcessingMode.BATCH:
            return self._settings.batch.max_ttl_seconds, "BATCH_MAX_TTL_SECONDS"
        return self._settings.queue.max_ttl_seconds, "QUEUE_MAX_TTL_SECONDS"

    def _check_batch_api(self, provider: LLMProviderType, request: ComparisonRequest) -> None:
        overrides = request.llm_config_overrides
        if self._batch_apis.supports(provider, overrides or LLMConfigOverrides()):
            return
        api = self._batch_apis.get(provider)
        model = api.model_for(overrides or LLMConfigOverrides()) if api is not None else None
        if model is None and overrides is not None:
            model = overrides.model_override
        raise BatchNotSupportedError(
            f'processing_mode "batch" is not available for provider {provider.value}'
            + (f" and model {model}" if model else "")
            + ": it has no Batch API here (BATCH_PROVIDERS, and the models its Batch API takes)",
            details={"provider": provider.value, "model": model},
        )

    def _check_modes(self, request: ComparisonRequest, caller: Caller | None) -> None:
        if (
            request.processing_mode is ProcessingMode.BATCH
            and request.cache_mode is not CacheMode.NONE
        ):
            raise RequestValidationError(
                f'cache_mode {request.cache_mode.value} cannot go with processing_mode "batch": '
                "every batch entry is its own fresh provider call",
                details={"field": "cache_mode", "processing_mode": "batch"},
            )
        if (
            request.cache_mode is CacheMode.DEVELOPMENT
            and not self._settings.providers.enable_response_cache
        ):
            raise CacheNotAllowedError(
                "cache_mode=development needs LLM_PROVIDER_SERVICE_ENABLE_RESPONSE_CACHE, which "
                "only development and testing allow: judgements are never served from a cache "
                "in staging or production",
                details={"field": "cache_mode", "environment": self._settings.environment.value},
            )
        ttl = request.ttl_seconds
        max_ttl, setting = self._max_ttl_seconds(request)
        if ttl is not None and ttl > max_ttl:
            raise RequestValidationError(
                f"ttl_seconds must be at most {max_ttl} ({setting})",
                details={"field": "ttl_seconds", "max": max_ttl},
            )
        self._check_topic(request.callback_topic, caller)
        if request.callback_url:
            target = self._webhook_policy.target(request.callback_url)
            if caller is not None:
                caller.check_callback_host(target.host)

    def _check_topic(self, topic: str | None, caller: Caller | None) -> None:
        if not topic:
            return
        if not _KAFKA_TOPIC.fullmatch(topic):
            # Refused now: the broker would refuse it on every delivery attempt for ever.
            raise CallbackNotAllowedError(
                "callback_topic must be a Kafka topic name: 1 to 249 of A-Z a-z 0-9 . _ -",
                details={"field": "callback_topic", "reason": "invalid_topic_name"},
            )
        if not self._settings.topic_allowed(topic):
            raise CallbackNotAllowedError(
                f"callback_topic {topic!r} is not in the allow-list",
                details={"field": "callback_topic", "reason": "topic_not_allowed"},
            )
        if caller is not None:
            caller.check_topic(topic)
