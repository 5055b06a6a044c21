"""The settings that must never run together: the rules across sections that `Settings`
checks last, each refusal one readable sentence naming the variables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common_core.enums import LLMProviderType
from services.llm_provider_service.delivery.host_patterns import is_broad_host_pattern
from services.llm_provider_service.settings.sections import ENV_PREFIX

if TYPE_CHECKING:  # only annotates; `Settings` calls in here while it validates
    from services.llm_provider_service.settings.service import Settings


def contradictions(settings: Settings) -> list[str]:
    """Every refusal of `settings`; empty when they may run."""
    problems: list[str] = []
    if settings.environment.is_deployed:
        problems += _unsafe_once_deployed(settings)
        problems += _unsafe_on_a_network(settings)
    problems += _caller_topics_outside_allowlist(settings)
    problems += _delivery_timings(settings)
    problems += _queue_timings(settings)
    problems += _cluster_without_redis(settings)
    problems += _processes_without_redis(settings)
    return problems


def _unsafe_once_deployed(settings: Settings) -> list[str]:
    env = settings.environment.value
    problems: list[str] = []
    if settings.providers.enable_response_cache:
        problems.append(
            f"{ENV_PREFIX}ENABLE_RESPONSE_CACHE is set but ENVIRONMENT={env}: a cached "
            "judgement is a perfectly consistent 'super-rater' that corrupts "
            "Bradley-Terry scores, so caching is allowed only in development and testing"
        )
    if settings.providers.use_mock_llm or settings.default_provider is LLMProviderType.MOCK:
        problems.append(
            f"ENVIRONMENT={env} would answer with the mock provider "
            f"({ENV_PREFIX}USE_MOCK_LLM or {ENV_PREFIX}DEFAULT_LLM_PROVIDER=mock)"
        )
    if not settings.uses_kafka:
        problems.append(
            f"{ENV_PREFIX}KAFKA_ENABLED is off but ENVIRONMENT={env}: result events "
            "would only be written to the log, and CJ Assessment would never get them"
        )
    if not settings.queue_persistence:
        problems.append(
            f"{ENV_PREFIX}ENABLE_QUEUE_PERSISTENCE is off but ENVIRONMENT={env}: queued "
            "requests would live in memory and be lost on restart"
        )
    return problems


def _unsafe_on_a_network(settings: Settings) -> list[str]:
    """What staging and production refuse because it is unsafe once anyone can reach
    the service."""
    env = settings.environment.value
    webhooks = settings.webhooks
    problems: list[str] = []
    if not settings.callers:
        problems.append(
            f"no callers are configured ({ENV_PREFIX}CALLERS or {ENV_PREFIX}CALLERS_FILE) "
            f"but ENVIRONMENT={env}: anyone who reaches the service could read and cancel "
            "every request and spend on every provider"
        )
    if webhooks.allow_http:
        problems.append(
            f"{ENV_PREFIX}WEBHOOK_ALLOW_HTTP is on but ENVIRONMENT={env}: results would "
            "travel unencrypted"
        )
    if webhooks.allow_private_addresses:
        problems.append(
            f"{ENV_PREFIX}WEBHOOK_ALLOW_PRIVATE_ADDRESSES is on but ENVIRONMENT={env}: a "
            "caller could make the service send requests into the internal network"
        )
    broad = [p for p in webhooks.allowed_hosts if is_broad_host_pattern(p)]
    for name, policy in settings.callers.items():
        broad += [f"{p} (caller {name})" for p in policy.webhook_hosts if is_broad_host_pattern(p)]
    if broad:
        problems.append(
            f"webhook host patterns {', '.join(broad)} but ENVIRONMENT={env}: a wildcard "
            "other than *.<domain>.<tld> lets callers send results to any host"
        )
    return problems


def _caller_topics_outside_allowlist(settings: Settings) -> list[str]:
    problems = []
    for name, policy in settings.callers.items():
        outside = [topic for topic in policy.topics if not settings.topic_allowed(topic)]
        if outside:
            problems.append(
                f"caller {name} may use topics {', '.join(outside)}, outside "
                f"{ENV_PREFIX}CALLBACK_TOPIC_ALLOWLIST: no request could ever use them"
            )
    return problems


def _delivery_timings(settings: Settings) -> list[str]:
    webhooks, outbox = settings.webhooks, settings.outbox
    problems: list[str] = []
    if webhooks.allowed_hosts and webhooks.signing_secret is None:
        problems.append(
            f"{ENV_PREFIX}WEBHOOK_ALLOWED_HOSTS is set but {ENV_PREFIX}WEBHOOK_SIGNING_SECRET "
            "is not: receivers could not tell our webhooks from forgeries"
        )
    slowest_send = max(webhooks.timeout_seconds, settings.kafka.send_timeout_seconds)
    if outbox.lease_seconds <= 2 * slowest_send:
        problems.append(
            f"{ENV_PREFIX}OUTBOX_LEASE_SECONDS ({outbox.lease_seconds}) must be more "
            f"than twice the slowest send ({slowest_send}s, WEBHOOK_TIMEOUT_SECONDS or "
            "KAFKA_SEND_TIMEOUT_SECONDS): otherwise another relay sends the same result "
            "while the first is still waiting"
        )
    if outbox.retry_base_seconds > outbox.retry_max_seconds:
        problems.append(
            f"{ENV_PREFIX}OUTBOX_RETRY_BASE_SECONDS is larger than "
            f"{ENV_PREFIX}OUTBOX_RETRY_MAX_SECONDS"
        )
    return problems


def _queue_timings(settings: Settings) -> list[str]:
    queue = settings.queue
    problems: list[str] = []
    if queue.request_ttl_seconds > queue.max_ttl_seconds:
        problems.append(
            f"{ENV_PREFIX}QUEUE_REQUEST_TTL_SECONDS ({queue.request_ttl_seconds}) is "
            f"longer than {ENV_PREFIX}QUEUE_MAX_TTL_SECONDS ({queue.max_ttl_seconds})"
        )
    if queue.poll_interval_seconds >= settings.redis.socket_timeout_seconds:
        problems.append(
            f"{ENV_PREFIX}QUEUE_POLL_INTERVAL_SECONDS must be shorter than "
            f"{ENV_PREFIX}REDIS_SOCKET_TIMEOUT_SECONDS: workers block on Redis that long"
        )
    if queue.retry_base_seconds > queue.retry_max_seconds:
        problems.append(
            f"{ENV_PREFIX}QUEUE_RETRY_BASE_SECONDS is larger than "
            f"{ENV_PREFIX}QUEUE_RETRY_MAX_SECONDS"
        )
    return problems


def _cluster_without_redis(settings: Settings) -> list[str]:
    if settings.redis.cluster and not settings.queue_persistence:
        return [
            f"{ENV_PREFIX}REDIS_CLUSTER is on but {ENV_PREFIX}ENABLE_QUEUE_PERSISTENCE is off: "
            "the queue and every store would live in this process's memory and no Redis "
            "Cluster would be used; turn persistence on, or the cluster setting off"
        ]
    return []


def _processes_without_redis(settings: Settings) -> list[str]:
    """Each serve process would hold a queue of its own in memory: a request queued by one
    would be drained, polled and cancelled only through that one, and the load balancer (the
    kernel, here) sends a status poll to any of them."""
    if settings.serve_worker_count > 1 and not settings.queue_persistence:
        return [
            f"{ENV_PREFIX}SERVE_WORKERS is {settings.serve_worker_count} but "
            f"{ENV_PREFIX}ENABLE_QUEUE_PERSISTENCE is off: each serve process would keep its "
            "own in-memory queue, so a status poll answered by another process would not "
            "find the request; turn persistence on (Redis), or set SERVE_WORKERS=1"
        ]
    return []
