"""Fixtures for tests that start the app: apps with custom settings or container overrides."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from dishka import Provider
from quart.typing import TestClientProtocol

from services.llm_provider_service.app import create_app
from services.llm_provider_service.di import make_container
from services.llm_provider_service.settings import Settings

StartApp = Callable[..., Awaitable[TestClientProtocol]]


@pytest.fixture
async def start_app(make_settings: Callable[..., Settings]) -> AsyncIterator[StartApp]:
    """`await start_app(*overrides, settings=None, **setting_overrides)`: a client of an app
    whose lifecycle runs (worker started) until the test ends.

    `overrides` are dishka providers that replace bindings of the environment's container.
    """
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            *overrides: Provider, settings: Settings | None = None, **values: Any
        ) -> TestClientProtocol:
            config = settings or make_settings(**values)
            container = make_container(config, *overrides) if overrides else None
            app = create_app(config, container=container)
            test_app = app.test_app()
            await test_app.startup()
            stack.push_async_callback(test_app.shutdown)
            return test_app.test_client()

        yield start
