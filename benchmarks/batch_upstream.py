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
    """`with FakeVendorProcess() as fake:` the fake vendors at `fake.base_urls`; every
    Anthropic and OpenAI batch ends as soon as it is submitted, and `fake.batches[vendor]`
    maps each ended batch's id to its number of entries."""

    def __init__(self) -> None:
        self.batches: dict[str, dict[str, int]] = {"anthropic": {}, "openai": {}}
        self.port = 0
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def base_urls(self) -> dict[str, str]:
        """Per vendor, the base URL its SDK is given."""
        root = f"http://127.0.0.1:{self.port}"
        return {"anthropic": root, "openai": f"{root}/v1"}

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
            if words[:1] == ["ended"] and len(words) == 4:
                self.batches.setdefault(words[1], {})[words[2]] = int(words[3])

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
