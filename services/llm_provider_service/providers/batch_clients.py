"""The vendors' Batch API clients: one per vendor, built from its settings like its adapter.

`BATCH_BUILDERS` is the table the composition root (`BatchDeps` in `di/vendors.py`) walks for
every configured vendor named in `BATCH_PROVIDERS`: each builder makes the SDK client (key,
base URL, timeout; never the SDK's own environment variables) and the `BatchAPI` on it, and
returns how to close the client. A vendor without an entry has no batch lane. `FLEX_BUILDERS`
is the same for the flex lane.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from common_core.enums import LLMProviderType
from services.llm_provider_service.protocols import BatchAPI, LLMProvider
from services.llm_provider_service.settings import ProviderSettings, Settings

BatchBuild = tuple[BatchAPI, Callable[[], Awaitable[None]]]

BATCH_BUILDERS: dict[LLMProviderType, Callable[[ProviderSettings, Settings], BatchBuild]] = {}

FlexBuild = tuple[LLMProvider, Callable[[], Awaitable[None]]]

# The flex lane (`BATCH_FLEX_ENABLED`): per vendor that sells `service_tier: "flex"`, an
# adapter like its realtime one that asks for flex (slower, refused under load, about half
# price), with the flex timeout.
FLEX_BUILDERS: dict[LLMProviderType, Callable[[ProviderSettings, Settings], FlexBuild]] = {}
