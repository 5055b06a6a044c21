"""Real service processes (`serve`, `worker`) started by tests, and what their logs say.

A test starts processes through a `ProcessPool`, which kills whatever is still running when
the test ends, pass or fail. Every process writes stdout and stderr to its own log file; the
`LogEventPublisher` writes one `event topic=... {envelope}` line per event, so the logs tell
how often each request was started or completed, and by which process.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, overload

import httpx

from tests.support.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "LLM_PROVIDER_SERVICE_"
_VENDOR_KEYS = {
    "ENVIRONMENT",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "OPENROUTER_API_KEY",
}
_EVENT_LINE = re.compile(r"event topic=(?P<topic>\S+) (?P<body>\{.*\})\s*$")
_WORKER_STARTED = re.compile(r"queue worker (?P<owner>\S+) started")

T = TypeVar("T")


def service_env(*, redis_url: str, prefix: str, **settings: object) -> dict[str, str]:
    """The environment of a service process: the parent's, minus every service setting,
    plus `ENVIRONMENT=testing`, the Redis queue under `prefix`, and `settings` (keyword
    names without the `LLM_PROVIDER_SERVICE_` prefix, e.g. `queue_lease_seconds=1`)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(ENV_PREFIX) and key not in _VENDOR_KEYS
    }
    env.update(
        {
            "ENVIRONMENT": "testing",
            "PYTHONUNBUFFERED": "1",
            f"{ENV_PREFIX}ENABLE_QUEUE_PERSISTENCE": "true",
            f"{ENV_PREFIX}REDIS_URL": redis_url,
            f"{ENV_PREFIX}QUEUE_KEY_PREFIX": prefix,
            f"{ENV_PREFIX}LOG_LEVEL": "INFO",
        }
    )
    for name, value in settings.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        env[f"{ENV_PREFIX}{name.upper()}"] = text
    return env


def refused_start(env: dict[str, str], within: float = 30.0) -> list[str]:
    """Run `serve` with exactly `env`, expecting it to refuse to start: the lines it wrote to
    stderr. Fails the test unless it exited with code 2 (a configuration error) in time."""
    completed = subprocess.run(
        [sys.executable, "-m", "services.llm_provider_service", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=within,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    return completed.stderr.strip().splitlines()


@dataclass(frozen=True)
class Event:
    """One event line of a process log."""

    process: str
    topic: str
    data: dict[str, Any]
    timestamp: float  # the envelope's event_timestamp, epoch seconds

    @property
    def name(self) -> str:
        """`request_started`, `request_completed`, ... (the topic's middle part)."""
        return self.topic.rsplit(".", 2)[-2]

    @property
    def request_id(self) -> str:
        return str(self.data.get("request_id") or self.data.get("queue_id"))


@dataclass
class ServiceProcess:
    """One `python -m services.llm_provider_service <command>` process."""

    name: str
    command: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def base_url(self) -> str:
        assert self.port is not None, f"{self.name} is not an HTTP process"
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        """The log so far, complete lines only (the process may be writing the last one)."""
        data = self.log.read_text(errors="replace")
        return data[: data.rfind("\n") + 1]

    def events(self, name: str | None = None) -> list[Event]:
        """Every event line, or only the `name` ones (e.g. "request_started")."""
        found = []
        for line in self.text().splitlines():
            match = _EVENT_LINE.search(_message(line))
            if match is None:
                continue
            envelope = json.loads(match["body"])
            event = Event(
                process=self.name,
                topic=match["topic"],
                data=envelope["data"],
                timestamp=datetime.fromisoformat(envelope["event_timestamp"]).timestamp(),
            )
            if name is None or event.name == name:
                found.append(event)
        return found

    @property
    def owner(self) -> str | None:
        """The worker identity the process logged when its queue worker started."""
        match = _WORKER_STARTED.search(self.text())
        return match["owner"] if match else None

    def signal(self, sig: signal.Signals) -> None:
        if self.running():
            self.popen.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL, then reap the process (no zombie, no ResourceWarning)."""
        if self.running():
            self.popen.kill()
        self.popen.wait(timeout=10)

    async def exited(self, within: float) -> int:
        """The exit code, once the process has ended; fails the test after `within` seconds."""
        return await poll_until(
            self.popen.poll,
            within=within,
            what=f"{self.name} to exit",
            details=self.text,
        )

    async def wait_for_log(self, pattern: str, within: float = 30.0) -> re.Match[str]:
        """The first match of the regular expression `pattern` in the log."""
        regex = re.compile(pattern)

        def found() -> re.Match[str] | None:
            self._fail_if_exited()
            return regex.search(self.text())

        return await poll_until(
            found, within=within, what=f"{pattern!r} in {self.name}", details=self.text
        )

    async def wait_ready(self, within: float = 60.0) -> None:
        """A worker once its queue worker started; an HTTP process once /healthz is 200."""
        if self.port is None:
            await self.wait_for_log(_WORKER_STARTED.pattern, within)
            return
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:

            async def healthy() -> bool:
                self._fail_if_exited()
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await poll_until(healthy, within=within, what=f"{self.name} healthy", details=self.text)

    def _fail_if_exited(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise AssertionError(f"{self.name} exited with {code}:\n{self.text()[-4000:]}")


def _message(line: str) -> str:
    """The message of a log line: the `event` of a JSON line (LOG_FORMAT=json), else the
    line itself (the console format)."""
    if line.startswith("{"):
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            return line
        message = parsed.get("event") if isinstance(parsed, dict) else None
        if isinstance(message, str):
            return message
    return line


@dataclass
class ProcessPool:
    """Starts service processes with logs under `directory`; `close()` kills the rest."""

    directory: Path
    redis_url: str
    prefix: str
    defaults: dict[str, object] = field(default_factory=dict)
    # Variables without the service prefix, set last (e.g. ENVIRONMENT, OPENAI_API_KEY).
    environment: dict[str, str] = field(default_factory=dict)
    processes: list[ServiceProcess] = field(default_factory=list)

    def start(self, name: str, command: str, **settings: object) -> ServiceProcess:
        """`command` is "serve" or "worker"; `settings` override `defaults` (see
        `service_env`). A "serve" process gets a free port unless `port=` is given."""
        values = {**self.defaults, **settings}
        port: int | None = None
        if command == "serve":
            port = int(str(values.setdefault("port", free_port())))
        env = service_env(redis_url=self.redis_url, prefix=self.prefix, **values)
        env.update(self.environment)
        log = self.directory / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "services.llm_provider_service", command],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = ServiceProcess(name, command, popen, log, port)
        self.processes.append(process)
        return process

    def events(self, name: str | None = None) -> list[Event]:
        return [event for p in self.processes for event in p.events(name)]

    def close(self) -> None:
        for process in self.processes:
            process.kill()


def count_by_request(events: Iterable[Event]) -> Counter[str]:
    """How many of `events` each request id has."""
    return Counter(event.request_id for event in events)


def processes_by_request(events: Iterable[Event]) -> dict[str, set[str]]:
    """Which processes logged `events` for each request id."""
    found: dict[str, set[str]] = {}
    for event in events:
        found.setdefault(event.request_id, set()).add(event.process)
    return found


@overload
async def poll_until(
    condition: Callable[[], Awaitable[T | None]],
    *,
    within: float,
    what: str,
    interval: float = ...,
    details: Callable[[], str] | None = ...,
) -> T: ...


@overload
async def poll_until(
    condition: Callable[[], T | None],
    *,
    within: float,
    what: str,
    interval: float = ...,
    details: Callable[[], str] | None = ...,
) -> T: ...


async def poll_until(
    condition: Callable[[], Any],
    *,
    within: float,
    what: str,
    interval: float = 0.05,
    details: Callable[[], str] | None = None,
) -> Any:
    """The first truthy value of `condition` (sync or async), polled every `interval`;
    fails the test with `what` (and `details()`, e.g. a log tail) after `within` seconds.
    A result of 0 counts (an exit code); None and False do not."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{details()[-4000:]}" if details else ""
            raise AssertionError(f"timed out after {within}s waiting for {what}{extra}")
        await asyncio.sleep(interval)


def ensure_redis_running(server: RedisServer) -> None:
    """Leave the session's redis-server running and answering, whatever a test did to it:
    resume it if paused, start it if killed."""
    if server.process is not None and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
        try:
            server._wait_ready(within=5.0)
            return
        except RuntimeError:
            server.kill()
    server.start()
