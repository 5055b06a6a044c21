"""The composition root: which concrete adapter serves each port, per environment.

`ENVIRONMENT_DEPS` is the one table that chooses bindings per environment, `queue_deps` the
queue and outbox by ENABLE_QUEUE_PERSISTENCE, `event_deps` the publisher by KAFKA_ENABLED;
`make_container` applies all three.
Only this module and `app.py` import concrete adapters.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable

from anthropic import AsyncAnthropic
from dishka import AsyncContainer, Provider, Scope, from_context, make_async_container, provide
from google import genai
from google.genai import types as genai_types
from opentelemetry.trace import Tracer, TracerProvider
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from common_core.enums import CircuitBreakerState, EnvironmentType, LLMProviderType
from services.llm_provider_service.breaker import CircuitBreakers, ProviderCircuitBreaker
from services.llm_provider_service.cache.memory import InMemoryResponseCache, NoResponseCache
from services.llm_provider_service.callers import Callers
from services.llm_provider_service.delivery.webhook import WebhookSender
from services.llm_provider_service.delivery.webhook_policy import WebhookPolicy
from services.llm_provider_service.drain_rate import InMemoryDrainRate
from services.llm_provider_service.essay_order import Counterbalancer
from services.llm_provider_service.events.kafka import KafkaEventPublisher
from services.llm_provider_service.events.log import LogEventPublisher
from services.llm_provider_service.idempotency.guard import IdempotencyGuard
from services.llm_provider_service.idempotency.memory import InMemoryIdempotencyStore
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.orchestrator import ComparisonOrchestrator
from services.llm_provider_service.outbox.memory import InMemoryResultOutbox
from services.llm_provider_service.outbox.unsaved import UnsavedDeliveries
from services.llm_provider_service.owed_results import OwedResults
from services.llm_provider_service.position_bias.memory import InMemoryPositionBiasStore
from services.llm_provider_service.protocols import (
    DrainRate,
    EventPublisher,
    FaultInjection,
    IdempotencyStore,
    LLMProvider,
    PositionBiasStore,
    RateLimiter,
    RequestQueue,
    ResponseCache,
    ResultOutbox,
)
from services.llm_provider_service.provider_call import ProviderCall, SharedCalls
from services.llm_provider_service.provider_registry import ProviderRegistry, VendorAdapters
from services.llm_provider_service.providers.anthropic_provider import AnthropicProvider
from services.llm_provider_service.providers.gemini_provider import GeminiProvider
from services.llm_provider_service.providers.mock import MockProvider
from services.llm_provider_service.providers.openai_compatible import build_client
from services.llm_provider_service.providers.openai_provider import OpenAIProvider
from services.llm_provider_service.providers.openrouter_provider import (
    OPENROUTER_BASE_URL,
    OpenRouterProvider,
    attribution_headers,
)
from services.llm_provider_service.providers.pricing import PriceTable
from services.llm_provider_service.providers.redacting import RedactingProvider
from services.llm_provider_service.queue.durability import DurabilityWatch, check_durability
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.quotas.memory import InMemoryRateLimiter
from services.llm_provider_service.quotas.request_rate import RequestRateQuota
from services.llm_provider_service.redaction import Redactor
from services.llm_provider_service.redis.cache import RedisResponseCache
from services.llm_provider_service.redis.drain_rate import RedisDrainRate
from services.llm_provider_service.redis.idempotency import RedisIdempotencyStore
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.outbox import RedisResultOutbox
from services.llm_provider_service.redis.position_bias import RedisPositionBiasStore
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.redis.rate_limiter import RedisRateLimiter
from services.llm_provider_service.relay import ResultRelay
from services.llm_provider_service.request_rules import RequestRules
from services.llm_provider_service.result_deliveries import ResultDeliveries
from services.llm_provider_service.settings import ProviderSettings, Settings
from services.llm_provider_service.tracing import TRACER_NAME, tracer_provider
from services.llm_provider_service.worker import QueueWorker


class CoreDeps(Provider):
    """Bindings that are the same in every environment."""

    scope = Scope.APP
    settings = from_context(provides=Settings, scope=Scope.APP)

    @provide
    async def tracer_provider(self, settings: Settings) -> AsyncIterator[TracerProvider]:
        """The SDK's provider (tracing.py); closing the container flushes what it batched."""
        provider = tracer_provider(settings)
        yield provider
        await asyncio.to_thread(provider.shutdown)  # the exporter's last POST blocks

    @provide
    def tracer(self, provider: TracerProvider) -> Tracer:
        return provider.get_tracer(TRACER_NAME)

    @provide
    def metrics(self) -> ServiceMetrics:
        return ServiceMetrics()

    @provide
    def breakers(self, settings: Settings, metrics: ServiceMetrics) -> CircuitBreakers:
        def on_transition(
            provider: LLMProviderType, old: CircuitBreakerState, new: CircuitBreakerState
        ) -> None:
            metrics.breaker_transitions.labels(provider.value, old.value, new.value).inc()
            metrics.set_breaker_state(provider, new)

        return CircuitBreakers(
            {
                provider: ProviderCircuitBreaker(
                    provider,
                    failure_threshold=settings.providers.circuit_breaker_failure_threshold,
                    reset_timeout_seconds=settings.providers.circuit_breaker_reset_timeout_seconds,
                    on_transition=on_transition,
                )
                for provider in LLMProviderType
            }
        )

    @provide
    def events(
        self, publisher: EventPublisher, metrics: ServiceMetrics, settings: Settings
    ) -> LifecycleEvents:
        return LifecycleEvents(
            publisher,
            metrics,
            settings.kafka.topic_prefix,
            buffer_size=settings.lifecycle_events.buffer_size,
        )

    request_rules = provide(RequestRules)

    @provide
    def webhook_policy(self, settings: Settings) -> WebhookPolicy:
        return WebhookPolicy(settings.webhooks)

    @provide
    def shared_calls(self) -> SharedCalls:
        """The `deduplication_only` calls in flight in this process (nothing kept)."""
        return SharedCalls()

    provider_call = provide(ProviderCall)
    owed_results = provide(OwedResults)
    orchestrator = provide(ComparisonOrchestrator)

    @provide
    def counterbalancer(
        self, settings: Settings, store: PositionBiasStore, metrics: ServiceMetrics
    ) -> Counterbalancer:
        secret = settings.essay_order_secret
        # Without a configured secret, a random key per process: each request's order is
        # decided once on arrival and stored with it, so replicas need not share the key.
        key = secret.get_secret_value().encode() if secret is not None else os.urandom(32)
        return Counterbalancer(key, store, metrics)

    @provide
    def prices(self, settings: Settings) -> PriceTable:
        return PriceTable(settings.providers.model_prices)

    @provide
    def result_deliveries(self, settings: Settings, prices: PriceTable) -> ResultDeliveries:
        return ResultDeliveries(
            topic_prefix=settings.kafka.topic_prefix,
            webhook_deadline_seconds=settings.webhooks.delivery_deadline_seconds,
            prices=prices,
            default_models={
                p: settings.provider_settings(p).default_model for p in LLMProviderType
            },
        )

    @provide
    async def webhooks(self, settings: Settings) -> AsyncIterator[WebhookSender | None]:
        """The webhook sender, or None when no host is allowed (callback_url is refused)."""
        secret = settings.webhooks.signing_secret
        if not settings.webhooks.allowed_hosts or secret is None:
            yield None
            return
        sender = WebhookSender(
            None,
            WebhookPolicy(settings.webhooks),
            secret.get_secret_value().encode(),
            timeout_seconds=settings.webhooks.timeout_seconds,
        )
        yield sender
        await sender.close()

    @provide
    def unsaved_deliveries(self, settings: Settings) -> UnsavedDeliveries:
        """Request-path deliveries held while the outbox cannot be written; one per process,
        shared by the orchestrator (which holds) and the relay (which writes them)."""
        return UnsavedDeliveries(max_deliveries=settings.outbox.unsaved_max_deliveries)

    @provide
    def relay(
        self,
        queue: RequestQueue,
        outbox: ResultOutbox,
        publisher: EventPublisher,
        webhooks: WebhookSender | None,
        deliveries: ResultDeliveries,
        metrics: ServiceMetrics,
        settings: Settings,
        unsaved: UnsavedDeliveries,
        tracer: Tracer,
    ) -> ResultRelay:
        return ResultRelay(
            tracer=tracer,
            unsaved=unsaved,
            queue=queue,
            outbox=outbox,
            publisher=publisher,
            webhooks=webhooks,
            deliveries=deliveries,
            metrics=metrics,
            settings=settings,
        )

    @provide
    def callers(self, settings: Settings) -> Callers:
        return Callers(settings.callers)

    @provide
    def redactor(self, settings: Settings) -> Redactor:
        return Redactor(settings.secrets(), secret_digests=settings.caller_key_digests())

    @provide
    def request_rate_quota(self, limiter: RateLimiter, metrics: ServiceMetrics) -> RequestRateQuota:
        return RequestRateQuota(limiter, metrics)

    @provide
    async def idempotency_guard(
        self,
        orchestrator: ComparisonOrchestrator,
        store: IdempotencyStore,
        queue: RequestQueue,
        settings: Settings,
    ) -> AsyncIterator[IdempotencyGuard]:
        guard = IdempotencyGuard(orchestrator, store, queue, settings)
        yield guard
        await guard.close()  # before the Redis client it settles keys through is closed

    @provide
    def worker(
        self,
        queue: RequestQueue,
        calls: ProviderCall,
        events: LifecycleEvents,
        metrics: ServiceMetrics,
        drain_rate: DrainRate,
        settings: Settings,
        tracer: Tracer,
    ) -> QueueWorker:
        return QueueWorker(
            tracer=tracer,
            queue=queue,
            calls=calls,
            events=events,
            metrics=metrics,
            drain_rate=drain_rate,
            settings=settings,
        )


class InMemoryQueueDeps(Provider):
    """The queue in this process's memory: development and tests, lost on restart."""

    scope = Scope.APP

    @provide
    async def queue(self, settings: Settings) -> AsyncIterator[RequestQueue]:
        queue = InMemoryRequestQueue(settings.queue)
        yield queue
        await queue.close()  # warns about the accepted requests lost with the process

    @provide
    def idempotency(self) -> IdempotencyStore:
        return InMemoryIdempotencyStore()

    @provide
    def durability_watch(self, settings: Settings) -> DurabilityWatch:
        return DurabilityWatch(None, settings)  # no Redis: nothing to watch

    @provide
    def drain_rate(self) -> DrainRate:
        return InMemoryDrainRate()

    @provide
    def response_cache(self) -> ResponseCache:
        return InMemoryResponseCache()

    @provide
    def outbox(self, settings: Settings) -> ResultOutbox:
        return InMemoryResultOutbox(retention_seconds=settings.queue.result_retention_seconds)

    @provide
    def position_bias(self) -> PositionBiasStore:
        return InMemoryPositionBiasStore()

    @provide
    def rate_limiter(self) -> RateLimiter:
        return InMemoryRateLimiter()


class RedisQueueDeps(Provider):
    """The durable queue in Redis, shared by every replica and worker process."""

    scope = Scope.APP

    @provide
    async def redis(self, settings: Settings) -> AsyncIterator[Redis]:
        pool = BlockingConnectionPool.from_url(
            settings.redis.url,
            decode_responses=True,
            socket_connect_timeout=settings.redis.connect_timeout_seconds,
            socket_timeout=settings.redis.socket_timeout_seconds,
            # One immediate retry, on a dropped connection only: after a Redis restart every
            # pooled connection is stale once. No retry on timeouts, so an unreachable Redis
            # still gives 503 within about a second; the worker's own loop retries the rest.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            health_check_interval=30,
            # A burst (a relay pass, a spike of requests) waits for a free connection rather
            # than failing at once with "Too many connections", as the default pool does.
            max_connections=settings.redis.max_connections,
            timeout=settings.redis.socket_timeout_seconds,
        )
        client = Redis.from_pool(pool)  # the client owns the pool and closes it
        yield client
        await client.aclose()

    @provide
    def keys(self, settings: Settings) -> RedisKeys:
        return RedisKeys(settings.queue.key_prefix)

    @provide
    def queue(self, redis: Redis, keys: RedisKeys, settings: Settings) -> RequestQueue:
        return RedisRequestQueue(redis, keys, settings.queue)

    @provide
    def idempotency(self, redis: Redis, keys: RedisKeys) -> IdempotencyStore:
        return RedisIdempotencyStore(redis, keys)

    @provide
    def durability_watch(self, redis: Redis, settings: Settings) -> DurabilityWatch:
        return DurabilityWatch(redis, settings)

    @provide
    def drain_rate(self, redis: Redis, keys: RedisKeys) -> DrainRate:
        return RedisDrainRate(redis, keys)

    @provide
    def response_cache(self, redis: Redis, keys: RedisKeys) -> ResponseCache:
        return RedisResponseCache(redis, keys, InMemoryResponseCache(), ttl_seconds=3600)

    @provide
    def outbox(self, redis: Redis, keys: RedisKeys, settings: Settings) -> ResultOutbox:
        return RedisResultOutbox(
            redis, keys, retention_seconds=settings.queue.result_retention_seconds
        )

    @provide
    def position_bias(self, redis: Redis, keys: RedisKeys) -> PositionBiasStore:
        return RedisPositionBiasStore(redis, keys)

    @provide
    def rate_limiter(self, redis: Redis, keys: RedisKeys) -> RateLimiter:
        return RedisRateLimiter(redis, keys)


class LogEventDeps(Provider):
    """Events written to the log: development and tests without a broker."""

    scope = Scope.APP

    @provide
    def publisher(self) -> EventPublisher:
        return LogEventPublisher()


class KafkaEventDeps(Provider):
    """Events to Kafka through aiokafka, behind the publisher's own circuit breaker."""

    scope = Scope.APP

    @provide
    async def publisher(
        self, settings: Settings, metrics: ServiceMetrics
    ) -> AsyncIterator[EventPublisher]:
        publisher = KafkaEventPublisher(
            settings.kafka,
            on_transition=lambda _name, _old, new: metrics.set_kafka_breaker_state(new),
        )
        yield publisher
        await publisher.close()


VendorBuild = tuple[LLMProvider, Callable[[], Awaitable[None]]]
# The vendors' public endpoints, used when no *_BASE_URL is set (never the SDKs' env vars).
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
OPENAI_BASE_URL = "https://api.openai.com/v1"
GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/"


def _anthropic(config: ProviderSettings, settings: Settings) -> VendorBuild:
    assert config.api_key is not None
    client = AsyncAnthropic(
        api_key=config.api_key.get_secret_value(),
        # Explicit, so the SDK never falls back to its own environment variables.
        base_url=config.base_url or ANTHROPIC_BASE_URL,
        timeout=config.timeout_seconds,
        max_retries=0,  # the service's retry policy is the only one
    )
    adapter = AnthropicProvider(client, config, prompt_caching=settings.anthropic.prompt_caching)
    return adapter, client.close


def _openai(config: ProviderSettings, settings: Settings) -> VendorBuild:
    client = build_client(config, default_base_url=OPENAI_BASE_URL)
    adapter = OpenAIProvider(
        client, config, reasoning_prefixes=settings.openai.reasoning_model_prefixes
    )
    return adapter, client.close


def _openrouter(config: ProviderSettings, settings: Settings) -> VendorBuild:
    headers = attribution_headers(settings.openrouter.http_referer, settings.openrouter.app_title)
    client = build_client(config, default_base_url=OPENROUTER_BASE_URL, default_headers=headers)
    return OpenRouterProvider(client, config), client.close


def _gemini(config: ProviderSettings, settings: Settings) -> VendorBuild:
    assert config.api_key is not None
    options = genai_types.HttpOptions(
        base_url=config.base_url or GEMINI_BASE_URL, timeout=round(config.timeout_seconds * 1000)
    )
    client = genai.Client(api_key=config.api_key.get_secret_value(), http_options=options)

    async def close() -> None:
        await client.aio.aclose()
        client.close()

    return GeminiProvider(client, config), close


VENDOR_BUILDERS: dict[LLMProviderType, Callable[[ProviderSettings, Settings], VendorBuild]] = {
    LLMProviderType.ANTHROPIC: _anthropic,
    LLMProviderType.OPENAI: _openai,
    LLMProviderType.GOOGLE: _gemini,
    LLMProviderType.OPENROUTER: _openrouter,
}


class VendorDeps(Provider):
    """One SDK client per configured vendor for the life of the app, closed on shutdown."""

    scope = Scope.APP

    @provide
    async def vendors(
        self, settings: Settings, redactor: Redactor
    ) -> AsyncIterator[VendorAdapters]:
        adapters: dict[LLMProviderType, LLMProvider] = {}
        closers: list[Callable[[], Awaitable[None]]] = []
        for provider, build in VENDOR_BUILDERS.items():
            config = settings.provider_settings(provider)
            if config.enabled and config.configured:
                adapter, close = build(config, settings)
                # A vendor's error text may quote the key it was sent: redacted here, before
                # the breaker, the events, the response or the log see it.
                adapters[provider] = RedactingProvider(adapter, redactor)
                closers.append(close)
        yield VendorAdapters(adapters)
        for close in closers:
            await close()


class DevelopmentDeps(Provider):
    """Embedded default: the mock provider."""

    scope = Scope.APP

    @provide
    def mock_provider(self, settings: Settings) -> MockProvider:
        return MockProvider(settings.mock, random.Random(settings.mock.seed))

    @provide
    def fault_injection(self, mock: MockProvider) -> FaultInjection:
        return mock

    @provide
    def registry(
        self, settings: Settings, vendors: VendorAdapters, mock: MockProvider
    ) -> ProviderRegistry:
        return ProviderRegistry({**vendors.adapters, LLMProviderType.MOCK: mock}, settings)


class TestingDeps(DevelopmentDeps):
    """The embedded default, as the test suite and CI run it."""


class DeployedDeps(Provider):
    """Staging and production: real providers only, the queue always in Redis, and no
    response cache at all (this binding replaces the queue deps' development cache)."""

    scope = Scope.APP

    @provide
    def response_cache(self) -> ResponseCache:
        return NoResponseCache()

    @provide
    def registry(self, settings: Settings, vendors: VendorAdapters) -> ProviderRegistry:
        return ProviderRegistry(vendors.adapters, settings)


ENVIRONMENT_DEPS: dict[EnvironmentType, type[Provider]] = {
    EnvironmentType.DEVELOPMENT: DevelopmentDeps,
    EnvironmentType.TESTING: TestingDeps,
    EnvironmentType.STAGING: DeployedDeps,
    EnvironmentType.PRODUCTION: DeployedDeps,
}


def queue_deps(settings: Settings) -> Provider:
    """Redis when persistence is on (always in staging and production), else in memory."""
    return RedisQueueDeps() if settings.queue_persistence else InMemoryQueueDeps()


def event_deps(settings: Settings) -> Provider:
    """Kafka when KAFKA_ENABLED (always in staging and production), else the log."""
    return KafkaEventDeps() if settings.uses_kafka else LogEventDeps()


def make_container(settings: Settings, *overrides: Provider) -> AsyncContainer:
    """The app container for `settings.environment`; `overrides` (tests) replace bindings."""
    deps = ENVIRONMENT_DEPS[settings.environment]()
    return make_async_container(
        CoreDeps(),
        VendorDeps(),
        queue_deps(settings),
        event_deps(settings),
        deps,
        *overrides,
        context={Settings: settings},
    )


async def check_dependencies(container: AsyncContainer, settings: Settings) -> None:
    """Start-up checks before serving or working; raises `ConfigurationError` to refuse."""
    if settings.queue_persistence:
        problems = await check_durability(await container.get(Redis), settings)
        (await container.get(DurabilityWatch)).known(problems)
