"""Fixtures of the batch drills: the crash tests' processes and queue (`../conftest.py`),
with the Anthropic and OpenAI Batch APIs pointed at the session's fake upstream."""

from __future__ import annotations

import pytest

from tests.integration.crash.batch.drill import drill_defaults
from tests.support.fake_vendors import FakeUpstream, clean_fake_upstream, fake_upstream
from tests.support.processes import ProcessPool

__all__ = ["clean_fake_upstream", "fake_upstream"]  # fixtures of the fake vendors


@pytest.fixture
def batch_processes(processes: ProcessPool, clean_fake_upstream: FakeUpstream) -> ProcessPool:
    """The test's process pool, its processes set up for the batch drills (`drill_defaults`)."""
    processes.defaults = drill_defaults(clean_fake_upstream)
    return processes
