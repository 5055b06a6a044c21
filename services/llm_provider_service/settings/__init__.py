"""The service's settings, read once from the environment and validated as a whole.

`Settings` (`service.py`) holds one section per concern (`settings.queue`, `settings.kafka`,
`settings.anthropic`, ...; `providers.py`, `infrastructure.py`); each setting keeps its flat
environment name (`LLM_PROVIDER_SERVICE_QUEUE_MAX_SIZE`), see `sections.py`. Here are the
names the rest of the service imports.
"""

from services.llm_provider_service.settings.batch import BatchSettings
from services.llm_provider_service.settings.infrastructure import (
    KafkaSettings,
    QueueSettings,
    WebhookSettings,
)
from services.llm_provider_service.settings.providers import (
    MockErrorKind,
    MockSettings,
    ProviderSettings,
)
from services.llm_provider_service.settings.sections import ENV_PREFIX
from services.llm_provider_service.settings.service import (
    ConfigurationError,
    LogFormat,
    Settings,
    load_settings,
)

__all__ = [
    "ENV_PREFIX",
    "BatchSettings",
    "ConfigurationError",
    "KafkaSettings",
    "LogFormat",
    "MockErrorKind",
    "MockSettings",
    "ProviderSettings",
    "QueueSettings",
    "Settings",
    "WebhookSettings",
    "load_settings",
]
