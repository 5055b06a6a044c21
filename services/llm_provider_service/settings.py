"""The service's settings, read once from the environment and validated as a whole."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from common_core.enums import EnvironmentType, LLMProviderType, ProcessingMode
from common_core.events import DEFAULT_TOPIC_PREFIX
from services.llm_provider_service.callers import CallerPolicy, checked_names, read_callers
from services.llm_provider_service.delivery.host_patterns import is_broad_host_pattern
from services.llm_provider_service.providers.pricing import ModelPrice

ENV_PREFIX = "LLM_PROVIDER_SERVICE_"
MockRater = Literal["random", "bradley_terry"]
LogFormat = Literal["json", "console"]
MockErrorKind = Literal[
    "server_error", "rate_limit", "timeout", "connection", "auth", "bad_request", "invalid_response"
]


def _key(provider: str, *vendor_names: str) -> AliasChoices:
    """A provider key may come prefixed or under the vendor's usual unprefixed name."""
    return AliasChoices(f"{ENV_PREFIX}{provider}_API_KEY", *vendor_names)


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """One provider's slice of the settings, as its adapter and the registry need it."""

    provider: LLMProviderType
    api_key: SecretStr | None
    base_url: str | None
    default_model: str
    enabled: bool
    timeout_seconds: float
    max_concurrency: int = 8
    invalid_response_reasks: int = 1

    @property
    def configured(self) -> bool:
        return self.provider is LLMProviderType.MOCK or self.api_key is not None


class ConfigurationError(Exception):
    """The settings contradict each other or the environment; the service must not start."""


class Settings(BaseSettings):
    """Every setting of the service. Unset optional fields get environment-aware defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
    )

    environment: EnvironmentType = Field(
        default=EnvironmentType.DEVELOPMENT, validation_alias="ENVIRONMENT"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # How log lines are written (`logging_setup.py`); None: JSON when deployed, else console.
    log_format: LogFormat | None = None
    max_request_body_bytes: int = Field(default=1024 * 1024, gt=0)

    # The services allowed to call, by name (`CallerPolicy`), from the JSON of CALLERS or of
    # the file CALLERS_FILE. None configured: open, which only development and testing allow.
    callers: dict[str, CallerPolicy] = Field(default_factory=dict)
    callers_file: Path | None = None

    # The processing mode of a request that names none (a consumer that expects every
    # request to be queued and answered by event sets "async").
    default_processing_mode: ProcessingMode = ProcessingMode.QUEUE_IF_UNAVAILABLE

    # Providers. `None` means "pick the environment's default" (resolved below).
    default_llm_provider: LLMProviderType | None = None
    use_mock_llm: bool = False

    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=_key("ANTHROPIC", "ANTHROPIC_API_KEY")
    )
    anthropic_base_url: str | None = None
    # claude-sonnet-4-5 reaches end of life on 2026-11-30 (the SDK warns); its successor:
    anthropic_default_model: str = "claude-sonnet-4-6"
    anthropic_enabled: bool = True
    anthropic_timeout_seconds: float = Field(default=60.0, gt=0)
    anthropic_max_concurrency: int = Field(default=8, gt=0)

    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=_key("OPENAI", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = None
    openai_default_model: str = "gpt-5-mini"
    openai_enabled: bool = True
    openai_timeout_seconds: float = Field(default=60.0, gt=0)
    openai_max_concurrency: int = Field(default=8, gt=0)

    google_api_key: SecretStr | None = Field(
        default=None, validation_alias=_key("GOOGLE", "GOOGLE_API_KEY", "GEMINI_API_KEY")
    )
    google_base_url: str | None = None
    google_default_model: str = "gemini-2.5-flash"
    google_enabled: bool = True
    google_timeout_seconds: float = Field(default=60.0, gt=0)
    google_max_concurrency: int = Field(default=8, gt=0)

    openrouter_api_key: SecretStr | None = Field(
        default=None, validation_alias=_key("OPENROUTER", "OPENROUTER_API_KEY")
    )
    openrouter_base_url: str | None = None
    openrouter_default_model: str = "anthropic/claude-sonnet-4.5"
    openrouter_enabled: bool = True
    openrouter_timeout_seconds: float = Field(default=60.0, gt=0)
    openrouter_max_concurrency: int = Field(default=8, gt=0)

    openrouter_http_referer: str | None = None
    openrouter_app_title: str | None = "HuleEdu LLM Provider Service"
    anthropic_prompt_caching: bool = True
    openai_reasoning_model_prefixes: tuple[str, ...] = ("o1", "o3", "o4", "gpt-5")
    model_prices: dict[str, tuple[float, ...]] = Field(default_factory=dict)
    invalid_response_reasks: int = Field(default=1, ge=0, le=3)

    # The mock provider: a rater with natural variation, for development and outage drills.
    mock_enabled: bool = True
    mock_default_model: str = Field(default="mock-rater-1", min_length=1)
    mock_win_probability_a: float = Field(default=0.5, ge=0.0, le=1.0)
    mock_confidence_weights: tuple[float, float, float, float, float] = (1.0, 2.0, 4.0, 3.0, 1.0)
    mock_latency_ms: float = Field(default=20.0, ge=0.0)
    mock_latency_jitter_ms: float = Field(default=10.0, ge=0.0)
    mock_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    mock_error_kind: MockErrorKind = "server_error"
    mock_seed: int | None = None
    # "bradley_terry": abilities read from markers in the presented essays (see providers.md),
    # the first-presented essay winning with probability logistic(bias + θ_first - θ_second).
    mock_rater: MockRater = "random"
    mock_position_bias: float = Field(default=0.0, ge=-5.0, le=5.0)

    # Server-side essay order: the key of the hash that picks which requests are swapped.
    # Unset: a random key per process (each request's order is decided once and stored).
    essay_order_secret: SecretStr | None = None

    # Circuit breakers, one per provider and replica.
    circuit_breaker_failure_threshold: int = Field(default=5, gt=0)
    circuit_breaker_reset_timeout_seconds: float = Field(default=30.0, gt=0)

    # The outage queue.
    enable_queue_persistence: bool | None = None
    redis_url: str = "redis://localhost:6379/0"
    redis_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    redis_socket_timeout_seconds: float = Field(default=1.0, gt=0)
    redis_max_connections: int = Field(default=64, gt=0)
    allow_non_durable_redis: bool = False
    redis_durability_check_interval_seconds: float = Field(default=60.0, gt=0)
    queue_key_prefix: str = Field(default="llmq", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    queue_request_ttl_seconds: int = Field(default=4 * 3600, gt=0)
    queue_max_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    queue_max_size: int = Field(default=10_000, gt=0)
    queue_max_attempts: int = Field(default=5, gt=0)
    queue_lease_seconds: float = Field(default=30.0, gt=0)
    queue_poll_interval_seconds: float = Field(default=0.5, gt=0)
    queue_retry_base_seconds: float = Field(default=1.0, gt=0)
    queue_retry_max_seconds: float = Field(default=300.0, gt=0)
    queue_priority_boost_seconds: float = Field(default=60.0, ge=0)
    queue_result_retention_seconds: int = Field(default=24 * 3600, gt=0)
    queue_max_request_bytes: int = Field(default=256 * 1024, gt=0)
    # Bounds on the records of ended requests kept for the status route (besides the
    # retention time): beyond either, the oldest already announced are deleted first.
    queue_result_max_bytes: int = Field(default=128 * 1024 * 1024, gt=0)
    queue_result_max_count: int = Field(default=50_000, gt=0)
    # /healthz reports the queue degraded once Redis uses this share of its maxmemory.
    redis_memory_degraded_ratio: float = Field(default=0.9, gt=0, le=1)
    idempotency_retention_seconds: int = Field(default=24 * 3600, gt=0)
    idempotency_wait_seconds: float = Field(default=30.0, ge=0)

    # The background worker that drains the queue.
    worker_enabled: bool = True
    worker_concurrency_per_provider: int = Field(default=4, gt=0)
    worker_shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)

    # Cache (development only).
    enable_response_cache: bool = False

    # Events. `None` for kafka_enabled means Kafka when deployed, the log otherwise.
    kafka_enabled: bool | None = None
    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_topic_prefix: str = DEFAULT_TOPIC_PREFIX
    kafka_client_id: str = "llm_provider_service"
    # On for real Kafka; the Tansu broker in the tests refuses the idempotent producer.
    kafka_enable_idempotence: bool = True
    kafka_send_timeout_seconds: float = Field(default=5.0, gt=0)
    kafka_breaker_failure_threshold: int = Field(default=3, gt=0)
    kafka_breaker_reset_timeout_seconds: float = Field(default=10.0, gt=0)
    kafka_unknown_topic_max_attempts: int = Field(default=5, gt=0)
    lifecycle_events_buffer_size: int = Field(default=10_000, gt=0)
    lifecycle_events_shutdown_drain_seconds: float = Field(default=5.0, ge=0)
    callback_topic_allowlist: tuple[str, ...] = (f"{DEFAULT_TOPIC_PREFIX}.*",)

    # Result delivery: the durable outbox and its relay.
    outbox_poll_interval_seconds: float = Field(default=0.5, gt=0)
    outbox_batch_size: int = Field(default=50, gt=0)
    outbox_send_concurrency: int = Field(default=16, gt=0)
    outbox_lease_seconds: float = Field(default=30.0, gt=0)
    outbox_retry_base_seconds: float = Field(default=1.0, gt=0)
    outbox_retry_max_seconds: float = Field(default=60.0, gt=0)
    outbox_unsaved_max_deliveries: int = Field(default=10_000, gt=0)

    # Webhooks (callback_url). No host is allowed until one is listed.
    webhook_allowed_hosts: tuple[str, ...] = ()
    webhook_allow_private_addresses: bool = False
    webhook_allow_http: bool = False
    webhook_signing_secret: SecretStr | None = None
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_delivery_deadline_seconds: int = Field(default=24 * 3600, gt=0)

    # Traces (tracing.py). Spans are always made, so trace ids and `traceparent` headers are
    # real; they leave the process only when the OTLP/HTTP exporter is on.
    otel_exporter_enabled: bool = False
    otel_exporter_endpoint: str = "http://localhost:4318/v1/traces"
    otel_exporter_headers: dict[str, SecretStr] = Field(default_factory=dict)
    otel_exporter_timeout_seconds: float = Field(default=10.0, gt=0)
    otel_service_name: str = Field(default="llm_provider_service", min_length=1)

    @field_validator(
        "anthropic_api_key",
        "openai_api_key",
        "google_api_key",
        "openrouter_api_key",
        "webhook_signing_secret",
        "essay_order_secret",
        mode="before",
    )
    @classmethod
    def _blank_key_is_no_key(cls, value: object) -> object:
        # Compose and CI often pass `KEY=` through; an empty key is no key, not a bad one.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "anthropic_base_url",
        "openai_base_url",
        "google_base_url",
        "openrouter_base_url",
        mode="before",
    )
    @classmethod
    def _blank_url_is_default(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webhook_signing_secret", "essay_order_secret")
    @classmethod
    def _secret_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters: it is an HMAC key")
        return value

    @field_validator("model_prices")
    @classmethod
    def _prices_are_prices(
        cls, value: dict[str, tuple[float, ...]]
    ) -> dict[str, tuple[float, ...]]:
        for model, prices in value.items():
            try:
                ModelPrice.of(prices)
            except ValueError as exc:
                raise ValueError(f"{model}: {exc}") from None
        return value

    @field_validator("mock_confidence_weights")
    @classmethod
    def _weights_are_a_distribution(
        cls, value: tuple[float, float, float, float, float]
    ) -> tuple[float, float, float, float, float]:
        if any(w < 0 for w in value) or sum(value) <= 0:
            raise ValueError("weights must be non-negative and not all zero")
        return value

    @field_validator("callers")
    @classmethod
    def _caller_names(cls, value: dict[str, CallerPolicy]) -> dict[str, CallerPolicy]:
        return checked_names(value)

    @model_validator(mode="after")
    def _read_callers_file(self) -> Self:
        if self.callers_file is None:
            return self
        if self.callers:
            raise ValueError("set CALLERS or CALLERS_FILE, not both")
        self.callers = read_callers(self.callers_file)
        return self

    @model_validator(mode="after")
    def _resolve_environment_defaults(self) -> Self:
        deployed = self.environment.is_deployed
        if self.default_llm_provider is None:
            self.default_llm_provider = (
                LLMProviderType.ANTHROPIC if deployed else LLMProviderType.MOCK
            )
        if self.enable_queue_persistence is None:
            self.enable_queue_persistence = deployed
        if self.kafka_enabled is None:
            self.kafka_enabled = deployed
        if self.log_format is None:
            self.log_format = "json" if deployed else "console"
        return self

    @property
    def default_provider(self) -> LLMProviderType:
        assert self.default_llm_provider is not None  # resolved by the validator
        return self.default_llm_provider

    @property
    def resolved_log_format(self) -> LogFormat:
        assert self.log_format is not None  # resolved by the validator
        return self.log_format

    @property
    def queue_persistence(self) -> bool:
        return bool(self.enable_queue_persistence)

    @property
    def kafka(self) -> bool:
        return bool(self.kafka_enabled)

    def provider_settings(self, provider: LLMProviderType) -> ProviderSettings:
        name = provider.value
        return ProviderSettings(
            provider=provider,
            api_key=getattr(self, f"{name}_api_key", None),
            base_url=getattr(self, f"{name}_base_url", None),
            default_model=getattr(self, f"{name}_default_model"),
            enabled=getattr(self, f"{name}_enabled"),
            timeout_seconds=getattr(self, f"{name}_timeout_seconds", 60.0),
            max_concurrency=getattr(self, f"{name}_max_concurrency", 8),
            invalid_response_reasks=self.invalid_response_reasks,
        )

    def topic_allowed(self, topic: str) -> bool:
        """Whether `topic` matches a pattern of CALLBACK_TOPIC_ALLOWLIST."""
        return any(fnmatch.fnmatchcase(topic, p) for p in self.callback_topic_allowlist)

    def check_consistency(self) -> None:
        """Raise `ConfigurationError` for settings that must never run together.

        Called by `create_app` and the worker before anything starts, so that a
        misconfigured deployment fails at boot with one readable line.
        """
        problems = list(self._contradictions())
        if problems:
            raise ConfigurationError("; ".join(problems))

    def _unsafe_on_a_network(self) -> list[str]:
        """What staging and production refuse because it is unsafe once anyone can reach
        the service."""
        env = self.environment.value
        problems: list[str] = []
        if not self.callers:
            problems.append(
                f"no callers are configured ({ENV_PREFIX}CALLERS or {ENV_PREFIX}CALLERS_FILE) "
                f"but ENVIRONMENT={env}: anyone who reaches the service could read and cancel "
                "every request and spend on every provider"
            )
        if self.webhook_allow_http:
            problems.append(
                f"{ENV_PREFIX}WEBHOOK_ALLOW_HTTP is on but ENVIRONMENT={env}: results would "
                "travel unencrypted"
            )
        if self.webhook_allow_private_addresses:
            problems.append(
                f"{ENV_PREFIX}WEBHOOK_ALLOW_PRIVATE_ADDRESSES is on but ENVIRONMENT={env}: a "
                "caller could make the service send requests into the internal network"
            )
        broad = [p for p in self.webhook_allowed_hosts if is_broad_host_pattern(p)]
        for name, policy in self.callers.items():
            broad += [
                f"{p} (caller {name})" for p in policy.webhook_hosts if is_broad_host_pattern(p)
            ]
        if broad:
            problems.append(
                f"webhook host patterns {', '.join(broad)} but ENVIRONMENT={env}: a wildcard "
                "other than *.<domain>.<tld> lets callers send results to any host"
            )
        return problems

    def _caller_topics_outside_allowlist(self) -> list[str]:
        problems = []
        for name, policy in self.callers.items():
            outside = [topic for topic in policy.topics if not self.topic_allowed(topic)]
            if outside:
                problems.append(
                    f"caller {name} may use topics {', '.join(outside)}, outside "
                    f"{ENV_PREFIX}CALLBACK_TOPIC_ALLOWLIST: no request could ever use them"
                )
        return problems

    def _contradictions(self) -> list[str]:
        env = self.environment.value
        problems: list[str] = []
        if self.environment.is_deployed:
            if self.enable_response_cache:
                problems.append(
                    f"{ENV_PREFIX}ENABLE_RESPONSE_CACHE is set but ENVIRONMENT={env}: a cached "
                    "judgement is a perfectly consistent 'super-rater' that corrupts "
                    "Bradley-Terry scores, so caching is allowed only in development and testing"
                )
            if self.use_mock_llm or self.default_provider is LLMProviderType.MOCK:
                problems.append(
                    f"ENVIRONMENT={env} would answer with the mock provider "
                    f"({ENV_PREFIX}USE_MOCK_LLM or {ENV_PREFIX}DEFAULT_LLM_PROVIDER=mock)"
                )
            if not self.kafka:
                problems.append(
                    f"{ENV_PREFIX}KAFKA_ENABLED is off but ENVIRONMENT={env}: result events "
                    "would only be written to the log, and CJ Assessment would never get them"
                )
            if not self.queue_persistence:
                problems.append(
                    f"{ENV_PREFIX}ENABLE_QUEUE_PERSISTENCE is off but ENVIRONMENT={env}: queued "
                    "requests would live in memory and be lost on restart"
                )
            problems += self._unsafe_on_a_network()
        problems += self._caller_topics_outside_allowlist()
        if self.webhook_allowed_hosts and self.webhook_signing_secret is None:
            problems.append(
                f"{ENV_PREFIX}WEBHOOK_ALLOWED_HOSTS is set but {ENV_PREFIX}WEBHOOK_SIGNING_SECRET "
                "is not: receivers could not tell our webhooks from forgeries"
            )
        slowest_send = max(self.webhook_timeout_seconds, self.kafka_send_timeout_seconds)
        if self.outbox_lease_seconds <= 2 * slowest_send:
            problems.append(
                f"{ENV_PREFIX}OUTBOX_LEASE_SECONDS ({self.outbox_lease_seconds}) must be more "
                f"than twice the slowest send ({slowest_send}s, WEBHOOK_TIMEOUT_SECONDS or "
                "KAFKA_SEND_TIMEOUT_SECONDS): otherwise another relay sends the same result "
                "while the first is still waiting"
            )
        if self.outbox_retry_base_seconds > self.outbox_retry_max_seconds:
            problems.append(
                f"{ENV_PREFIX}OUTBOX_RETRY_BASE_SECONDS is larger than "
                f"{ENV_PREFIX}OUTBOX_RETRY_MAX_SECONDS"
            )
        if self.queue_request_ttl_seconds > self.queue_max_ttl_seconds:
            problems.append(
                f"{ENV_PREFIX}QUEUE_REQUEST_TTL_SECONDS ({self.queue_request_ttl_seconds}) is "
                f"longer than {ENV_PREFIX}QUEUE_MAX_TTL_SECONDS ({self.queue_max_ttl_seconds})"
            )
        if self.queue_poll_interval_seconds >= self.redis_socket_timeout_seconds:
            problems.append(
                f"{ENV_PREFIX}QUEUE_POLL_INTERVAL_SECONDS must be shorter than "
                f"{ENV_PREFIX}REDIS_SOCKET_TIMEOUT_SECONDS: workers block on Redis that long"
            )
        if self.queue_retry_base_seconds > self.queue_retry_max_seconds:
            problems.append(
                f"{ENV_PREFIX}QUEUE_RETRY_BASE_SECONDS is larger than "
                f"{ENV_PREFIX}QUEUE_RETRY_MAX_SECONDS"
            )
        return problems


def load_settings() -> Settings:
    """Read the settings from the environment once; raise `ConfigurationError` naming each
    bad variable in one line."""
    from pydantic_settings import SettingsError

    try:
        return Settings()
    except SettingsError as exc:
        # Raised before validation, e.g. a list setting that is not JSON.
        match = re.search(r'field "(\w+)"', str(exc))
        name = f"{ENV_PREFIX}{match.group(1).upper()}" if match else "a list setting"
        raise ConfigurationError(
            f'{name}: not valid JSON; list settings take a JSON array, e.g. \'["a", "b"]\''
        ) from None
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            if not error["loc"]:  # a rule across settings: its message names them
                problems.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            field, *inside = (str(part) for part in error["loc"])
            name = "ENVIRONMENT" if field == "ENVIRONMENT" else f"{ENV_PREFIX}{field.upper()}"
            where = f"{'.'.join(inside)}: " if inside else ""  # e.g. a caller's field
            problems.append(f"{name}: {where}{error['msg']}")
        raise ConfigurationError("; ".join(problems)) from None
