"""Which socket layer the httpx2-based vendor SDK clients get (`vendor_http.py`): the lean
transport by default, the SDK's own stack with `VENDOR_HTTP_TRANSPORT=httpx` or whenever a
proxy variable is set (httpx2 would bypass the proxy under a given transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx2
import pytest
from pydantic import SecretStr

from common_core.enums import LLMProviderType
from services.llm_provider_service.providers.batch_clients import BATCH_BUILDERS, FLEX_BUILDERS
from services.llm_provider_service.providers.lean_transport import LeanTransport
from services.llm_provider_service.providers.vendor_clients import VENDOR_BUILDERS
from services.llm_provider_service.settings import Settings

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")
SDK_VENDORS = (LLMProviderType.OPENAI, LLMProviderType.OPENROUTER, LLMProviderType.ANTHROPIC)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*PROXY_VARIABLES, "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def settings(**values: object) -> Settings:
    keys = {f"{p.value}_api_key": SecretStr("test-key") for p in SDK_VENDORS}
    return Settings(openai_max_concurrency=3, **keys, **values)  # type: ignore[arg-type]


def transport_of(sdk_client: object) -> object:
    """The transport under an SDK client's `httpx2.AsyncClient` (private attributes: the SDKs
    and httpx2 expose no other way to ask)."""
    http = sdk_client._client  # type: ignore[attr-defined]
    assert isinstance(http, httpx2.AsyncClient)
    return http._transport


@pytest.fixture
async def closing() -> AsyncIterator[list[Callable[[], Awaitable[None]]]]:
    closers: list[Callable[[], Awaitable[None]]] = []
    yield closers
    for close in closers:
        await close()


def _client_of(adapter: object) -> object:
    for name in ("_client", "_reads"):
        if hasattr(adapter, name):
            return getattr(adapter, name)
    raise AssertionError(f"no SDK client on {adapter!r}")


@pytest.mark.parametrize("provider", SDK_VENDORS)
async def test_the_sdk_clients_run_on_the_lean_transport_by_default(
    provider: LLMProviderType, closing: list[Callable[[], Awaitable[None]]]
) -> None:
    current = settings()
    adapter, close = VENDOR_BUILDERS[provider](current.provider_settings(provider), current)
    closing.append(close)

    transport = transport_of(_client_of(adapter))

    assert current.providers.vendor_http_transport == "lean"
    assert isinstance(transport, LeanTransport)


@pytest.mark.parametrize("provider", SDK_VENDORS)
async def test_httpx_keeps_the_sdks_own_stack(
    provider: LLMProviderType, closing: list[Callable[[], Awaitable[None]]]
) -> None:
    current = settings(vendor_http_transport="httpx")
    adapter, close = VENDOR_BUILDERS[provider](current.provider_settings(provider), current)
    closing.append(close)

    assert isinstance(transport_of(_client_of(adapter)), httpx2.AsyncHTTPTransport)


@pytest.mark.parametrize("variable", PROXY_VARIABLES)
async def test_a_proxy_in_the_environment_keeps_the_sdks_own_stack(
    variable: str, monkeypatch: pytest.MonkeyPatch, closing: list[Callable[[], Awaitable[None]]]
) -> None:
    monkeypatch.setenv(variable, "http://proxy.internal:3128")
    current = settings()
    provider = LLMProviderType.OPENAI
    adapter, close = VENDOR_BUILDERS[provider](current.provider_settings(provider), current)
    closing.append(close)

    assert not isinstance(transport_of(_client_of(adapter)), LeanTransport)


async def test_the_batch_and_flex_clients_follow_the_setting(
    closing: list[Callable[[], Awaitable[None]]],
) -> None:
    for kind, expected in (("lean", LeanTransport), ("httpx", httpx2.AsyncHTTPTransport)):
        current = settings(vendor_http_transport=kind)
        for builders, provider in (
            (BATCH_BUILDERS, LLMProviderType.ANTHROPIC),
            (BATCH_BUILDERS, LLMProviderType.OPENAI),
            (FLEX_BUILDERS, LLMProviderType.OPENAI),
        ):
            built, close = builders[provider](current.provider_settings(provider), current)
            closing.append(close)
            assert isinstance(transport_of(_client_of(built)), expected), (kind, provider)


async def test_the_pool_is_as_large_as_the_providers_concurrency(
    closing: list[Callable[[], Awaitable[None]]],
) -> None:
    current = settings()
    adapter, close = VENDOR_BUILDERS[LLMProviderType.OPENAI](
        current.provider_settings(LLMProviderType.OPENAI), current
    )
    closing.append(close)
    transport = transport_of(_client_of(adapter))
    assert isinstance(transport, LeanTransport)
    assert transport.max_connections == 3
