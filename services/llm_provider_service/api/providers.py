"""`/api/v1/providers`: each provider's state, and a minimal live test call."""

from __future__ import annotations

import time

from dishka import FromDishka
from quart import Blueprint, Response
from quart_dishka import inject
from quart_schema import document_response

from common_core.api_models import (
    LLMConfigOverrides,
    ProvidersResponse,
    ProviderStatus,
    ProviderTestResponse,
)
from common_core.enums import LLMProviderType
from services.llm_provider_service.api.auth import current_caller
from services.llm_provider_service.api.openapi import documented
from services.llm_provider_service.api.responses import json_response
from services.llm_provider_service.breaker import CircuitBreakers
from services.llm_provider_service.callers import require_admin
from services.llm_provider_service.errors import (
    MaxTokensTooLowError,
    ProviderError,
    UnknownProviderError,
)
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.protocols import RequestQueue
from services.llm_provider_service.provider_registry import ProviderRegistry
from services.llm_provider_service.quotas.request_rate import RequestRateQuota

bp = Blueprint("providers", __name__, url_prefix="/api/v1")

_TEST_PROMPT = ComparisonPrompt.plain(
    system_prompt="You are checking that this API works. Keep the justification short.",
    user_prompt="Which is better?\n\nEssay A:\nThe cat sat.\n\nEssay B:\nThe cat sat on the mat.",
)


@bp.get("/providers")
@document_response(ProvidersResponse, 200)
@documented("The state of every provider.", authenticated=True, errors=(503,))
@inject
async def list_providers(
    registry: FromDishka[ProviderRegistry],
    breakers: FromDishka[CircuitBreakers],
    queue: FromDishka[RequestQueue],
) -> Response:
    """Every provider: enabled, configured, available, breaker state, last outcomes, backlog."""
    stats = await queue.stats()
    providers = []
    for provider in LLMProviderType:
        config = registry.settings_for(provider)
        breaker = breakers[provider]
        providers.append(
            ProviderStatus(
                name=provider,
                enabled=config.enabled,
                configured=config.configured,
                available=registry.is_available(provider) and breaker.allows_call(),
                circuit_breaker_state=breaker.state,
                default_model=config.default_model,
                last_success_at=breaker.last_success_at,
                last_failure_at=breaker.last_failure_at,
                last_error=breaker.last_error,
                queued_count=stats.depth.get(provider, 0),
            )
        )
    return json_response(ProvidersResponse(providers=providers))


@bp.post("/providers/<provider>/test")
@document_response(ProviderTestResponse, 200)
@documented(
    "Make a minimal live call to one provider (admin callers).",
    authenticated=True,
    errors=(400, 403, 429),
)
@inject
async def test_provider(
    provider: str,
    registry: FromDishka[ProviderRegistry],
    breakers: FromDishka[CircuitBreakers],
    rate: FromDishka[RequestRateQuota],
) -> Response:
    """A minimal live call through the provider's breaker; `success` says how it went.
    A billed call: admin callers only, within their request rate."""
    caller = current_caller()
    require_admin(caller, "a provider test")
    await rate.take(caller)
    try:
        name = LLMProviderType(provider)
    except ValueError:
        raise UnknownProviderError(
            f"unknown provider {provider!r}; expected one of "
            + ", ".join(p.value for p in LLMProviderType),
            details={"field": "provider"},
        ) from None
    started = time.perf_counter()
    try:
        adapter = registry.get(name)
        judgement = await breakers[name].call(
            # The model's own token defaults: a small cap starves reasoning models.
            adapter.compare,
            _TEST_PROMPT,
            LLMConfigOverrides(),
        )
        success, message = True, f"{judgement.model} answered {judgement.winner.value}"
    except (ProviderError, MaxTokensTooLowError) as exc:
        success, message = False, f"{exc.code.value}: {exc.message}"
    elapsed_ms = round((time.perf_counter() - started) * 1000)
    body = ProviderTestResponse(
        success=success, provider=name, message=message, response_time_ms=elapsed_ms
    )
    return json_response(body)
