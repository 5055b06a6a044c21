"""The event loop every command runs on: uvloop when it can be imported, else asyncio's."""

from __future__ import annotations

import asyncio
import sys

import pytest

from services.llm_provider_service import event_loop


async def _running_loop() -> str:
    return event_loop.loop_name(asyncio.get_running_loop())


def test_commands_run_on_uvloop_where_it_is_installed():
    pytest.importorskip("uvloop")
    assert event_loop.run(_running_loop()) == "uvloop"


def test_without_uvloop_they_run_on_asyncios_own_loop(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as where it does not exist: ImportError
    assert event_loop.loop_factory() is asyncio.new_event_loop
    assert event_loop.run(_running_loop()) == "asyncio"
