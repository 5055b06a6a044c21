"""The service's settings, read once from the environment and validated as a whole.

`Settings` holds one section per concern (`settings.queue`, `settings.kafka`,
`settings.anthropic`, ...); each setting keeps its flat environment name
(`LLM_PROVIDER_SERVICE_QUEUE_MAX_SIZE`), see `sections.py`.
"""

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
)
from services.llm_provider_service.settings.providers import (
    AnthropicSettings,
    GoogleSettings,
    MockErrorKind,
    MockRater,
    MockSettings,
    OpenAISettings,
    OpenRouterSettings,
    ProviderSettings,
    ProvidersSettings,
    VendorSettings,
)
from services.llm_provider_service.settings.sections import ENV_PREFIX, Section
from services.llm_provider_service.settings.service import (
    ConfigurationError,
    LogFormat,
    Settings,
    load_settings,
)

__all__ = [
    "ENV_PREFIX",
    "AnthropicSettings",
    "ConfigurationError",
    "GoogleSettings",
    "IdempotencySettings",
    "KafkaSettings",
    "LifecycleEventsSettings",
    "LogFormat",
    "MockErrorKind",
    "MockRater",
    "MockSettings",
    "OpenAISettings",
    "OpenRouterSettings",
    "OutboxSettings",
    "ProviderSettings",
    "ProvidersSettings",
    "QueueSettings",
    "RedisSettings",
    "Section",
    "Settings",
    "TracingSettings",
    "VendorSettings",
    "WebhookSettings",
    "WorkerSettings",
    "load_settings",
]
