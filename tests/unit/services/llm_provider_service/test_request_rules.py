"""RequestRules: each refusal with its code, in the documented order, and the decided mode."""

from __future__ import annotations

from typing import Any

import pytest

from common_core.enums import ErrorCode, LLMProviderType, ProcessingMode
from services.llm_provider_service.batch.registry import BatchAPIs
from services.llm_provider_service.callers import Caller, CallerPolicy
from services.llm_provider_service.delivery.webhook_policy import WebhookPolicy
from services.llm_provider_service.errors import ServiceError
from services.llm_provider_service.prompt import render_prompt
from services.llm_provider_service.provider_registry import ProviderRegistry
from services.llm_provider_service.request_rules import RequestRules
from services.llm_provider_service.settings import Settings
from tests.factories import make_request
from tests.fakes import ScriptedProvider
from tests.support.batch_api import ModelsBatchAPI
from tests.support.callers import digest

TOPIC = "huleedu.cj_assessment.results.v1"
HOOK = "https://hooks.example.org/results"


def rules_for(settings: Settings) -> RequestRules:
    registry = ProviderRegistry({LLMProviderType.MOCK: ScriptedProvider()}, settings)
    apis = BatchAPIs({LLMProviderType.MOCK: ModelsBatchAPI()}, settings)
    return RequestRules(settings, WebhookPolicy(settings.webhooks), registry, apis)


def caller(**policy: Any) -> Caller:
    return Caller("cj", CallerPolicy(key_sha256=(digest("k"),), **policy))


@pytest.fixture
def rules(make_settings) -> RequestRules:
    # Settings refuse allowed hosts without a signing secret.
    hosts = {"webhook_allowed_hosts": ("hooks.example.org",), "webhook_signing_secret": "s" * 16}
    return rules_for(make_settings(**hosts))


REFUSALS = [
    # (request fields, caller policy or None, code, status, details that must be there)
    ({"priority": 9}, {"max_priority": 5}, ErrorCode.CALLER_LIMIT_EXCEEDED, 422, {"limit": 5}),
    ({"cache_mode": "development"}, None, ErrorCode.CACHE_NOT_ALLOWED, 400, {}),
    ({"ttl_seconds": 10**9}, None, ErrorCode.VALIDATION_ERROR, 400, {"field": "ttl_seconds"}),
    (
        {"callback_topic": "no spaces"},
        None,
        ErrorCode.CALLBACK_NOT_ALLOWED,
        400,
        {"field": "callback_topic", "reason": "invalid_topic_name"},
    ),
    (
        {"callback_topic": "elsewhere.results"},
        None,
        ErrorCode.CALLBACK_NOT_ALLOWED,
        400,
        {"field": "callback_topic", "reason": "topic_not_allowed"},
    ),
    (
        {"callback_topic": TOPIC},
        {"topics": ()},
        ErrorCode.FORBIDDEN,
        403,
        {"reason": "topic_not_allowed_for_caller"},
    ),
    (
        {"callback_url": "ftp://hooks.example.org/x"},
        None,
        ErrorCode.CALLBACK_NOT_ALLOWED,
        400,
        {"field": "callback_url", "reason": "scheme_not_allowed"},
    ),
    (
        {"callback_url": "https://other.example.org/x"},
        None,
        ErrorCode.CALLBACK_NOT_ALLOWED,
        400,
        {"field": "callback_url", "reason": "host_not_allowed"},
    ),
    (
        {"callback_url": HOOK},
        {"webhook_hosts": ("else.example.org",)},
        ErrorCode.FORBIDDEN,
        403,
        {"reason": "host_not_allowed_for_caller"},
    ),
    (
        {"llm_config_overrides": {"provider_override": "anthropic"}},
        None,
        ErrorCode.PROVIDER_NOT_CONFIGURED,
        503,
        {},
    ),
    (
        {"processing_mode": "batch", "cache_mode": "deduplication_only"},
        None,
        ErrorCode.VALIDATION_ERROR,
        400,
        {"field": "cache_mode"},
    ),
    (
        {"processing_mode": "batch", "cache_mode": "development"},
        None,
        ErrorCode.VALIDATION_ERROR,
        400,
        {"field": "cache_mode"},
    ),
    (
        {"processing_mode": "batch", "ttl_seconds": 73 * 3600},
        None,
        ErrorCode.VALIDATION_ERROR,
        400,
        {"field": "ttl_seconds", "max": 72 * 3600},
    ),
    (
        {"processing_mode": "batch", "llm_config_overrides": {"model_override": "mock-live"}},
        None,
        ErrorCode.BATCH_NOT_SUPPORTED,
        400,
        {"provider": "mock", "model": "mock-live"},
    ),
    (
        {"user_prompt": "Compare {essay_a} with {essay_b}", "essay_b": None},
        None,
        ErrorCode.VALIDATION_ERROR,
        400,
        {},
    ),
]


@pytest.mark.parametrize(
    ("fields", "policy", "code", "status", "details"),
    REFUSALS,
    ids=[
        "priority_above_cap",
        "development_cache",
        "ttl",
        "topic_name",
        "topic_allowlist",
        "topic_of_caller",
        "url_scheme",
        "url_host",
        "url_host_of_caller",
        "provider_not_configured",
        "batch_with_deduplication",
        "batch_with_development_cache",
        "batch_ttl",
        "batch_model_without_batch_api",
        "missing_essay",
    ],
)
def test_each_refusal_has_its_code(
    rules: RequestRules,
    fields: dict[str, Any],
    policy: dict[str, Any] | None,
    code: ErrorCode,
    status: int,
    details: dict[str, Any],
):
    allowed: dict[str, Any] = {"topics": (TOPIC,), "webhook_hosts": ("hooks.example.org",)}
    who = caller(**{**allowed, **(policy or {})})
    with pytest.raises(ServiceError) as refused:
        rules.admit(make_request(**fields), who if policy is not None else None)
    assert refused.value.code is code
    assert refused.value.http_status == status
    assert details.items() <= refused.value.details.items()


def test_a_disabled_provider_is_refused_with_its_own_code(make_settings):
    rules = rules_for(make_settings(mock_enabled=False))
    with pytest.raises(ServiceError) as refused:
        rules.admit(make_request(), None)
    assert refused.value.code is ErrorCode.PROVIDER_DISABLED
    assert refused.value.http_status == 503


def test_the_first_rule_broken_is_the_one_reported(rules: RequestRules):
    broken_everywhere = make_request(
        priority=9,
        cache_mode="development",
        ttl_seconds=10**9,
        callback_topic="no spaces",
        llm_config_overrides={"provider_override": "anthropic"},
    )
    with pytest.raises(ServiceError) as refused:
        rules.admit(broken_everywhere, caller(max_priority=5))
    assert refused.value.code is ErrorCode.CALLER_LIMIT_EXCEEDED
    with pytest.raises(ServiceError) as refused:
        rules.admit(broken_everywhere, None)
    assert refused.value.code is ErrorCode.CACHE_NOT_ALLOWED


def test_an_admitted_request_names_its_provider_and_prompt(rules: RequestRules):
    request = make_request(callback_topic=TOPIC, callback_url=HOOK)
    admitted = rules.admit(request, caller(topics=(TOPIC,), webhook_hosts=("hooks.example.org",)))
    assert admitted.provider is LLMProviderType.MOCK
    assert admitted.prompt == render_prompt(request)


def test_the_mode_is_the_requests_else_the_callers_else_the_settings(make_settings):
    rules = rules_for(make_settings(default_processing_mode="immediate"))
    named = make_request(processing_mode="queue_if_unavailable")
    unnamed = make_request()
    by_caller = caller(default_processing_mode="async")
    assert rules.admit(named, by_caller).request.processing_mode is (
        ProcessingMode.QUEUE_IF_UNAVAILABLE
    )
    assert rules.admit(unnamed, by_caller).request.processing_mode is ProcessingMode.ASYNC
    assert rules.admit(unnamed, caller()).request.processing_mode is ProcessingMode.IMMEDIATE
    assert rules.admit(unnamed, None).request.processing_mode is ProcessingMode.IMMEDIATE


def test_a_batch_request_for_a_provider_outside_batch_providers_is_refused(make_settings):
    rules = rules_for(make_settings(batch_providers=[]))
    with pytest.raises(ServiceError) as refused:
        rules.admit(make_request(processing_mode="batch"), None)
    assert refused.value.code is ErrorCode.BATCH_NOT_SUPPORTED
    assert refused.value.http_status == 400
    assert refused.value.details == {"provider": "mock", "model": None}
    assert rules.admit(make_request(processing_mode="async"), None)  # other modes still serve


def test_a_batch_request_for_a_model_the_batch_api_takes_is_admitted(rules: RequestRules):
    request = make_request(processing_mode="batch")
    admitted = rules.admit(request, None)
    assert admitted.request.processing_mode is ProcessingMode.BATCH
    assert admitted.provider is LLMProviderType.MOCK


def test_a_batch_request_may_wait_longer_than_a_realtime_one(make_settings):
    settings = make_settings(
        queue_request_ttl_seconds=600, queue_max_ttl_seconds=3600, batch_max_ttl_seconds=2 * 86400
    )
    rules = rules_for(settings)
    long_batch = make_request(processing_mode="batch", ttl_seconds=86400)
    assert rules.admit(long_batch, None).request.ttl_seconds == 86400
    with pytest.raises(ServiceError) as refused:
        rules.admit(make_request(processing_mode="async", ttl_seconds=86400), None)
    assert refused.value.details["field"] == "ttl_seconds"


def test_the_ttl_is_the_requests_else_its_lanes_default(make_settings):
    settings = make_settings(queue_request_ttl_seconds=600, batch_default_ttl_seconds=7200)
    rules = rules_for(settings)
    assert rules.ttl_seconds(make_request(processing_mode="batch")) == 7200
    assert rules.ttl_seconds(make_request(processing_mode="async")) == 600
    assert rules.ttl_seconds(make_request(processing_mode="batch", ttl_seconds=60)) == 60


def test_a_caller_may_default_to_batch(rules: RequestRules):
    by_caller = caller(default_processing_mode="batch")
    admitted = rules.admit(make_request(), by_caller)
    assert admitted.request.processing_mode is ProcessingMode.BATCH
    named = make_request(processing_mode="immediate")
    assert rules.admit(named, by_caller).request.processing_mode is ProcessingMode.IMMEDIATE
