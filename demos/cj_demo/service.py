"""Start the service on its embedded default as a real process, for a demo without a URL."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[2]
_PREFIX = "LLM_PROVIDER_SERVICE_"
STARTUP_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_environment(
    port: int, *, position_bias: float, cache: bool, provider: str
) -> dict[str, str]:
    """The process environment of a demo service: development, in memory, the mock as a
    Bradley-Terry rater with `position_bias`, the development cache if `cache`. The caller's
    own `LLM_PROVIDER_SERVICE_*` settings are dropped, vendor keys kept (for real providers).

    The mock is not seeded: a run is not reproducible anyway (request ids, essay orders and
    the order of concurrent calls vary), and with one seed every run would draw the same
    uniforms in a shuffled order, so runs would not be the independent sessions the
    thresholds were calibrated on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIX) and k != "ENVIRONMENT"}
    env.update(
        {
            "ENVIRONMENT": "development",
            f"{_PREFIX}PORT": str(port),
            f"{_PREFIX}DEFAULT_LLM_PROVIDER": provider,
            f"{_PREFIX}MOCK_RATER": "bradley_terry",
            f"{_PREFIX}MOCK_POSITION_BIAS": repr(position_bias),
            f"{_PREFIX}MOCK_LATENCY_MS": "5",
            f"{_PREFIX}MOCK_LATENCY_JITTER_MS": "3",
            f"{_PREFIX}ENABLE_RESPONSE_CACHE": "true" if cache else "false",
            f"{_PREFIX}LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@contextlib.contextmanager
def running_service(env: Mapping[str, str], port: int) -> Iterator[str]:
    """Run `python -m services.llm_provider_service serve` with `env` until the block ends;
    yields its base URL once `/healthz` answers, and stops it with SIGTERM. Raises
    `RuntimeError` (with the service's output) when it does not start."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.llm_provider_service", "serve"],
            cwd=ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_until_healthy(base_url, process, log)
            yield base_url
        finally:
            _stop(process)


def _wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx.Client(base_url=base_url, timeout=1.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited with {process.returncode}: {_read(log)}")
            with contextlib.suppress(httpx.TransportError):
                http.get("/healthz")
                return
            time.sleep(0.1)
    raise RuntimeError(f"the service did not answer within {STARTUP_SECONDS} s: {_read(log)}")


def _read(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
