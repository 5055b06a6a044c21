"""The tests' fake vendors (`tests/support/fake_vendors`) in a process of their own.

Benchmarks import no test code (`tests/unit/test_no_test_imports.py`), and the fake vendors
are test support (they hold pytest fixtures and the tests' switches). Rather than copy the
Messages and Message Batches wire formats here, the benchmark starts the same fake as a
process (`python -m tests.support.fake_vendors --end-batches`) and talks to it as the
service does, over HTTP: one fake, whose wire formats the integration tests keep true.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
STOP_SECONDS = 10.0


class FakeVendorProcess:
    """`with FakeVendorProcess() as fake:` the fake vendors on `fake.base_url`; every
    Anthropic batch ends as soon as it is submitted, and `fake.batches` maps each ended
    batch's id to its number of entries."""

    def __init__(self) -> None:
        self.batches: dict[str, int] = {}
        self.port = 0
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The Anthropic base URL (the SDK appends `/v1/messages`)."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeVendorProcess:
        command = [sys.executable, "-m", "tests.support.fake_vendors", "--end-batches"]
        process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._process = process
        assert process.stdout is not None
        first = process.stdout.readline().split()
        if first[:1] != ["listening"]:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the fake vendors did not start: {first}")
        self.port = int(first[1])
        self._reader = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._reader.start()
        return self

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            words = line.split()
            if words[:1] == ["ended"] and len(words) == 3:
                self.batches[words[1]] = int(words[2])

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()  # the fake stops when its stdin closes
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(STOP_SECONDS)
        if process.stdout is not None:
            process.stdout.close()
