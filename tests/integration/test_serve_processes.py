"""`ServeProcesses`, the parent of several serve processes, with stand-in children: a child
that ends on its own stops the others, and nothing is restarted."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from services.llm_provider_service import serve_processes
from services.llm_provider_service.serving import SpawnedProcess
from services.llm_provider_service.settings import Settings
from tests.support.redis_server import free_port

pytestmark = pytest.mark.timeout(120)

_RECORD = "LLM_PROVIDER_TEST_SERVE_PROCESSES_RECORD"


def _stand_in(spawned: SpawnedProcess) -> None:
    """A serve process that records its start; the first ends at once with code 3, the
    others wait for SIGTERM and record it."""
    record = Path(os.environ[_RECORD])

    def note(line: str) -> None:
        with record.open("a") as out:
            out.write(f"{line}\n")

    if spawned.index == 1:  # once the others can take SIGTERM, end
        while len(record.read_text().splitlines() if record.exists() else []) < spawned.count - 1:
            time.sleep(0.05)
        note(f"started {spawned.index}")
        sys.exit(3)

    def stopped(_signum: int, _frame: object) -> None:
        note(f"stopped {spawned.index}")
        sys.exit(0)

    signal.signal(signal.SIGTERM, stopped)
    note(f"started {spawned.index}")
    time.sleep(30)  # far longer than the parent needs to forward its SIGTERM
    sys.exit(4)


def test_a_process_that_ends_on_its_own_stops_the_others_and_none_restarts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    record = tmp_path / "record"
    monkeypatch.setenv(_RECORD, str(record))
    monkeypatch.setattr(serve_processes, "serve_process", _stand_in)
    settings = Settings(
        serve_workers=3,
        enable_queue_persistence=True,
        port=free_port(),
        worker_shutdown_grace_seconds=0,
    )
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = serve_processes.ServeProcesses(settings, None).run()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    lines = record.read_text().splitlines()
    assert code == 3  # the first failure's code: the orchestrator sees why
    assert sorted(line for line in lines if line.startswith("started")) == [
        "started 1",
        "started 2",
        "started 3",
    ]  # three started, none restarted
    assert sorted(line for line in lines if line.startswith("stopped")) == [
        "stopped 2",
        "stopped 3",
    ]
