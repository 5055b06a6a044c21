"""`Settings`: every setting of the service by section, read once from the environment and
validated as a whole; `load_settings` turns every problem into one readable line."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from common_core.enums import EnvironmentType, LLMProviderType, ProcessingMode
from common_core.events import DEFAULT_TOPIC_PREFIX
from services.llm_provider_service.callers import CallerPolicy, checked_names, read_callers
from services.llm_provider_service.settings.batch import BatchSettings
from services.llm_provider_service.settings.consistency import contradictions
from services.llm_provider_service.settings.infrastructure import (
    IdempotencySettings,
    KafkaSettings,
    LifecycleEventsSettings,
    OutboxSettings,
    QueueSettings,
    RedisSettings,
    TracingSettings,
    WebhookSettings,
    WorkerSettings,
    long_enough,
)
from services.llm_provider_service.settings.providers import (
    AnthropicSettings,
    GoogleSettings,
    MockSettings,
    OpenAISettings,
    OpenRouterSettings,
    ProviderSettings,
    ProvidersSettings,
    VendorSettings,
    blank_is_none,
)
from services.llm_provider_service.settings.sections import (
    ENV_PREFIX,
    SectionedEnvSource,
    env_names,
    nest,
    sections,
)

LogFormat = Literal["json", "console"]


class ConfigurationError(Exception):
    """The settings contradict each other or the environment; the service must not start."""


class Settings(BaseSettings):
    """Every setting of the service, by section. Unset optional fields get
    environment-aware defaults; settings that must never run together are refused."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=False, extra="ignore", populate_by_name=True
    )

    environment: EnvironmentType = Field(
        default=EnvironmentType.DEVELOPMENT, validation_alias="ENVIRONMENT"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # How many Hypercorn processes `serve` runs on the one socket (`serve_processes.py`);
    # None: the CPU cores when deployed, else 1 (resolved by the validator below).
    serve_workers: int | None = Field(default=None, gt=0)
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
    # The Kafka topics a request may name for its result (fnmatch patterns).
    callback_topic_allowlist: tuple[str, ...] = (f"{DEFAULT_TOPIC_PREFIX}.*",)

    # Server-side essay order: the key of the hash that picks which requests are swapped.
    # Unset: a random key per process (each request's order is decided once and stored).
    essay_order_secret: SecretStr | None = None

    providers: ProvidersSettings = Field(default_factory=ProvidersSettings)
    anthropic: AnthropicSettings = Field(default_factory=AnthropicSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    google: GoogleSettings = Field(default_factory=GoogleSettings)
    openrouter: OpenRouterSettings = Field(default_factory=OpenRouterSettings)
    mock: MockSettings = Field(default_factory=MockSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    lifecycle_events: LifecycleEventsSettings = Field(default_factory=LifecycleEventsSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, SectionedEnvSource(settings_cls)

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_names(cls, data: Any) -> Any:
        return nest(cls, data) if isinstance(data, dict) else data

    _blank_secret_is_none = field_validator("essay_order_secret", mode="before")(blank_is_none)

    @field_validator("essay_order_secret")
    @classmethod
    def _secret_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        return long_enough(value)

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
    def _resolve_defaults_then_refuse_contradictions(self) -> Self:
        deployed = self.environment.is_deployed
        if self.providers.default_llm_provider is None:
            self.providers.default_llm_provider = (
                LLMProviderType.ANTHROPIC if deployed else LLMProviderType.MOCK
            )
        if self.queue.persistence is None:
            self.queue.persistence = deployed
        if self.kafka.enabled is None:
            self.kafka.enabled = deployed
        if self.log_format is None:
            self.log_format = "json" if deployed else "console"
        if self.serve_workers is None:
            self.serve_workers = cpu_cores() if deployed else 1
        problems = contradictions(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def default_provider(self) -> LLMProviderType:
        assert self.providers.default_llm_provider is not None  # resolved by the validator
        return self.providers.default_llm_provider

    @property
    def resolved_log_format(self) -> LogFormat:
        assert self.log_format is not None  # resolved by the validator
        return self.log_format

    @property
    def serve_worker_count(self) -> int:
        assert self.serve_workers is not None  # resolved by the validator
        return self.serve_workers

    @property
    def queue_persistence(self) -> bool:
        return bool(self.queue.persistence)

    @property
    def uses_kafka(self) -> bool:
        return bool(self.kafka.enabled)

    @property
    def vendors(self) -> dict[LLMProviderType, VendorSettings]:
        """The section of every vendor (every provider but the mock)."""
        return {
            section.provider: section
            for section in (self.anthropic, self.openai, self.google, self.openrouter)
        }

    def provider_settings(self, provider: LLMProviderType) -> ProviderSettings:
        section = self.mock if provider is LLMProviderType.MOCK else self.vendors[provider]
        return ProviderSettings.of(provider, section, self.providers.invalid_response_reasks)

    def secrets(self) -> list[str]:
        """Every secret the settings hold, verbatim (vendor keys, HMAC keys)."""
        keys = [section.api_key for section in self.vendors.values()]
        values = [*keys, self.webhooks.signing_secret, self.essay_order_secret]
        return [v.get_secret_value() for v in values if v is not None]

    def caller_key_digests(self) -> list[str]:
        """The SHA-256 of every caller's key, as configured."""
        return [d for policy in self.callers.values() for d in policy.key_sha256]

    def topic_allowed(self, topic: str) -> bool:
        """Whether `topic` matches a pattern of CALLBACK_TOPIC_ALLOWLIST."""
        return any(fnmatch.fnmatchcase(topic, p) for p in self.callback_topic_allowlist)


def cpu_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform tells it, so a
    pinned container counts its own); a CPU quota (cgroup `cpu.max`) is not seen."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _env_name(loc: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The environment name of the setting at `loc`, and the path inside its value."""
    field, *inside = loc
    section = sections(Settings).get(field)
    if section is not None and inside:
        field, *inside = inside
        if field not in section.model_fields:  # reported under its alias
            return field.upper(), tuple(inside)
        return env_names(section, field)[0], tuple(inside)
    if field == "ENVIRONMENT":
        return field, tuple(inside)
    return f"{ENV_PREFIX}{field.upper()}", tuple(inside)


def load_settings(**values: Any) -> Settings:
    """Read the settings from the environment once (`values` override it, by flat or
    section name); raise `ConfigurationError` naming each bad variable in one line."""
    try:
        return Settings(**values)
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
            name, inside = _env_name(tuple(str(part) for part in error["loc"]))
            where = f"{'.'.join(inside)}: " if inside else ""  # e.g. a caller's field
            problems.append(f"{name}: {where}{error['msg']}")
        raise ConfigurationError("; ".join(problems)) from None
