"""The batch lane: `processing_mode: "batch"` requests sent through the vendors' Batch APIs."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from common_core.enums import LLMProviderType
from services.llm_provider_service.settings.sections import Section

_WITH_BATCH_API = (
    LLMProviderType.ANTHROPIC,
    LLMProviderType.OPENAI,
    LLMProviderType.GOOGLE,
    LLMProviderType.OPENROUTER,
    LLMProviderType.MOCK,
)


class BatchSettings(Section):
    """`LLM_PROVIDER_SERVICE_BATCH_*`; `documentation/batch.md` says what each one changes."""

    env_prefix: ClassVar[str] = "BATCH_"

    # Providers whose Batch API may be used; a batch request for another is 400
    # BATCH_NOT_SUPPORTED. Empty: the batch lane is off.
    providers: tuple[LLMProviderType, ...] = _WITH_BATCH_API
    # How long a batch may wait to fill: the oldest waiting request of a provider is sent
    # at the latest this long after it became claimable, with whatever else is waiting.
    max_wait_seconds: float = Field(default=60.0, ge=0)
    # How often open provider batches are polled (and the lane's other housekeeping runs).
    poll_seconds: float = Field(default=60.0, gt=0)
    # The most entries the service puts in one provider batch (below each vendor's own cap).
    max_items: int = Field(default=5_000, gt=0)
    # TTL of a batch request that names none, and the most one may ask for.
    default_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    max_ttl_seconds: int = Field(default=72 * 3600, gt=0)
    # The batch lane's lease: heartbeated by the engine every third of it while a request
    # sits in a provider batch; after a crash, what the engine had not recorded comes back
    # to the queue when it runs out.
    lease_seconds: float = Field(default=900.0, gt=0)
    # How long a create whose outcome is unknown (timeout, dropped connection, 5xx) is
    # looked for in the vendor's list before its requests go back to the queue unspent.
    submit_timeout_seconds: float = Field(default=600.0, gt=0)
    # The most batch requests the batch lane holds, waiting or in a provider batch (the
    # realtime queue keeps QUEUE_MAX_SIZE); beyond it a batch request is refused 503
    # QUEUE_FULL. Batch requests wait for hours, so the lane holds more.
    queue_max_size: int = Field(default=100_000, gt=0)
    # The flex lane (OpenAI and Gemini `service_tier: "flex"`): batch requests of those
    # providers are first tried as flex calls; a refusal or timeout falls back to the batch.
    flex_enabled: bool = False
    flex_timeout_seconds: float = Field(default=900.0, gt=0)
