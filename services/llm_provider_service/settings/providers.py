"""The providers' sections of the settings: one per vendor, the mock, and what they share."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator

from common_core.enums import LLMProviderType
from services.llm_provider_service.providers.pricing import ModelPrice
from services.llm_provider_service.providers.vendor_http import VendorHttpTransport
from services.llm_provider_service.settings.sections import ENV_PREFIX, Section

MockRater = Literal["random", "bradley_terry"]
MockErrorKind = Literal[
    "server_error", "rate_limit", "timeout", "connection", "auth", "bad_request", "invalid_response"
]


def _key(provider: str, *vendor_names: str) -> Any:
    """A provider key may come prefixed or under the vendor's usual unprefixed name."""
    names = AliasChoices(f"{ENV_PREFIX}{provider}_API_KEY", *vendor_names)
    return Field(default=None, validation_alias=names)


def blank_is_none(value: object) -> object:
    """Compose and CI often pass `KEY=` through; an empty value is no value, not a bad one."""
    return None if isinstance(value, str) and not value.strip() else value


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """One provider's slice of the settings, as its adapter and the registry need it."""

    provider: LLMProviderType
    default_model: str
    enabled: bool
    api_key: SecretStr | None = None
    base_url: str | None = None
    timeout_seconds: float = 60.0
    max_concurrency: int = 8
    invalid_response_reasks: int = 1

    @property
    def configured(self) -> bool:
        return self.provider is LLMProviderType.MOCK or self.api_key is not None

    @classmethod
    def of(
        cls, provider: LLMProviderType, section: Section, invalid_response_reasks: int
    ) -> ProviderSettings:
        """`provider`'s slice from its section (what the section lacks keeps its default:
        the mock has no key, URL or timeout)."""
        fields = section.model_dump(include=_PROVIDER_FIELDS)
        return cls(provider, invalid_response_reasks=invalid_response_reasks, **fields)


_PROVIDER_FIELDS = {f.name for f in fields(ProviderSettings)} - {
    "provider",
    "invalid_response_reasks",
}


class VendorSettings(Section):
    """A vendor's key, endpoint, default model and limits, read from
    `LLM_PROVIDER_SERVICE_<PROVIDER>_*`."""

    provider: ClassVar[LLMProviderType]

    api_key: SecretStr | None = None
    base_url: str | None = None
    default_model: str
    enabled: bool = True
    timeout_seconds: float = Field(default=60.0, gt=0)
    max_concurrency: int = Field(default=8, gt=0)

    _blank_key_or_url_is_none = field_validator("api_key", "base_url", mode="before")(blank_is_none)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.env_prefix = f"{cls.provider.value.upper()}_"


class AnthropicSettings(VendorSettings):
    provider: ClassVar[LLMProviderType] = LLMProviderType.ANTHROPIC
    api_key: SecretStr | None = _key("ANTHROPIC", "ANTHROPIC_API_KEY")
    # claude-sonnet-4-5 reaches end of life on 2026-11-30 (the SDK warns); its successor:
    default_model: str = "claude-sonnet-4-6"
    prompt_caching: bool = True


class OpenAISettings(VendorSettings):
    provider: ClassVar[LLMProviderType] = LLMProviderType.OPENAI
    api_key: SecretStr | None = _key("OPENAI", "OPENAI_API_KEY")
    default_model: str = "gpt-5-mini"
    reasoning_model_prefixes: tuple[str, ...] = ("o1", "o3", "o4", "gpt-5")


class GoogleSettings(VendorSettings):
    provider: ClassVar[LLMProviderType] = LLMProviderType.GOOGLE
    api_key: SecretStr | None = _key("GOOGLE", "GOOGLE_API_KEY", "GEMINI_API_KEY")
    default_model: str = "gemini-2.5-flash"


class OpenRouterSettings(VendorSettings):
    provider: ClassVar[LLMProviderType] = LLMProviderType.OPENROUTER
    api_key: SecretStr | None = _key("OPENROUTER", "OPENROUTER_API_KEY")
    default_model: str = "anthropic/claude-sonnet-4.5"
    # Attribution headers OpenRouter shows in its rankings (`attribution_headers`).
    http_referer: str | None = None
    app_title: str | None = "HuleEdu LLM Provider Service"


class MockSettings(Section):
    """The mock provider: a rater with natural variation, for development and outage drills."""

    env_prefix: ClassVar[str] = "MOCK_"

    enabled: bool = True
    default_model: str = Field(default="mock-rater-1", min_length=1)
    win_probability_a: float = Field(default=0.5, ge=0.0, le=1.0)
    confidence_weights: tuple[float, float, float, float, float] = (1.0, 2.0, 4.0, 3.0, 1.0)
    latency_ms: float = Field(default=20.0, ge=0.0)
    latency_jitter_ms: float = Field(default=10.0, ge=0.0)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    error_kind: MockErrorKind = "server_error"
    seed: int | None = None
    # "bradley_terry": abilities read from markers in the presented essays (see providers.md),
    # the first-presented essay winning with probability logistic(bias + θ_first - θ_second).
    rater: MockRater = "random"
    position_bias: float = Field(default=0.0, ge=-5.0, le=5.0)
    # How long a batch of the mock's Batch API runs: it ends at the first poll this long
    # after its create (`providers/mock_batch.py`).
    batch_seconds: float = Field(default=0.0, ge=0.0)

    @field_validator("confidence_weights")
    @classmethod
    def _weights_are_a_distribution(
        cls, value: tuple[float, float, float, float, float]
    ) -> tuple[float, float, float, float, float]:
        if any(w < 0 for w in value) or sum(value) <= 0:
            raise ValueError("weights must be non-negative and not all zero")
        return value


class ProvidersSettings(Section):
    """What every provider shares: which answers by default, prices, re-asks, breakers."""

    # `None` means "pick the environment's default" (resolved by `Settings`).
    default_llm_provider: LLMProviderType | None = None
    use_mock_llm: bool = False
    model_prices: dict[str, tuple[float, ...]] = Field(default_factory=dict)
    invalid_response_reasks: int = Field(default=1, ge=0, le=3)
    # Circuit breakers, one per provider and replica.
    circuit_breaker_failure_threshold: int = Field(default=5, gt=0)
    circuit_breaker_reset_timeout_seconds: float = Field(default=30.0, gt=0)
    # Cache of answers (development only).
    enable_response_cache: bool = False
    # The socket layer under the openai and anthropic SDKs (`providers/vendor_http.py`).
    vendor_http_transport: VendorHttpTransport = "lean"

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
