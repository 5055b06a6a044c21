"""The vendors' Batch API clients: one per vendor, built from its settings like its adapter.

`BATCH_BUILDERS` is the table the composition root (`BatchDeps` in `di/vendors.py`) walks for
every configured vendor named in `BATCH_PROVIDERS`: each builder makes the SDK client (key,
base URL, timeout; never the SDK's own environment variables) and the `BatchAPI` on it, and
returns how to close the client. A vendor without an entry has no batch lane.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from common_core.enums import LLMProviderType
from services.llm_provider_service.protocols import BatchAPI
from services.llm_provider_service.settings import ProviderSettings, Settings

BatchBuild = tuple[BatchAPI, Callable[[], Awaitable[None]]]

BATCH_BUILDERS: dict[LLMProviderType, Callable[[ProviderSettings, Settings], BatchBuild]] = {}
