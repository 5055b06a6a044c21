"""The processes the gateway benchmark runs beside itself: the fake upstream, the service and
the LiteLLM proxy (in its own cached virtual environment), each in a process group of its
own so that stopping it stops everything it started."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
LITELLM_VENV = Path.home() / ".cache" / "llm-provider-service" / "bench" / "litellm-venv"
LITELLM_MODEL = "bench-judge"
# The proxy refuses to start without a master key; callers send it as their API key.
LITELLM_KEY = "sk-bench-" + secrets.token_hex(16)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    """A started process group: its name, where it listens and its leader."""

    name: str
    url: str
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss_mb(self) -> float | None:
        """Resident memory (VmRSS) summed over every live process of the group: the leader
        and any workers it forked. None once the group has exited."""
        total_kb, found = 0, False
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                status = (entry / "status").read_text()
            except OSError:
                continue
            # The process group is the 5th field of /proc/<pid>/stat, after "(comm)".
            if int(stat.rsplit(")", 1)[1].split()[2]) != self.pid:
                continue
            line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), None)
            if line is not None:
                total_kb += int(line.split()[1])
                found = True
        return total_kb / 1024 if found else None

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)


def _start(
    name: str, url: str, command: list[str], env: dict[str, str], log: Path | None
) -> Process:
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    popen = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    return Process(name, url, popen)


def wait_ready(process: Process, path: str, within: float = 60.0) -> None:
    """Until `path` answers (any status below 500), or RuntimeError."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {process.popen.returncode}")
        try:
            if httpx.get(process.url + path, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{process.name} did not become ready within {within:.0f} s")


def start_upstream(latency_ms: float, log: Path | None = None) -> Process:
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.gateway.upstream", "--port", str(port)]
    command += ["--latency-ms", str(latency_ms)]
    process = _start("upstream", f"http://127.0.0.1:{port}", command, dict(os.environ), log)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            if time.monotonic() > deadline or process.popen.poll() is not None:
                raise RuntimeError("the fake upstream did not start") from None
            time.sleep(0.05)


def service_env(port: int, extra: dict[str, str]) -> dict[str, str]:
    """The environment without anyone's LLM_PROVIDER_SERVICE_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_PROVIDER_SERVICE_")}
    env.update(
        {
            "ENVIRONMENT": "testing",
            "LLM_PROVIDER_SERVICE_PORT": str(port),
            "LLM_PROVIDER_SERVICE_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


def start_service(extra: dict[str, str], log: Path | None = None) -> Process:
    """`python -m services.llm_provider_service serve` with `extra` settings, once healthy."""
    port = free_port()
    command = [sys.executable, "-m", "services.llm_provider_service", "serve"]
    process = _start("service", f"http://127.0.0.1:{port}", command, service_env(port, extra), log)
    wait_ready(process, "/healthz")
    return process


def openai_service_settings(upstream: Process) -> dict[str, str]:
    """The OpenAI provider pointed at the fake upstream, and no limit of its own on calls in
    flight (the default of 8 would cap the service, not measure it)."""
    return {
        "OPENAI_API_KEY": "bench-key",
        "LLM_PROVIDER_SERVICE_OPENAI_BASE_URL": upstream.url + "/v1",
        "LLM_PROVIDER_SERVICE_OPENAI_DEFAULT_MODEL": "gpt-4.1-mini",
        "LLM_PROVIDER_SERVICE_OPENAI_MAX_CONCURRENCY": "1000",
        "LLM_PROVIDER_SERVICE_OPENAI_TIMEOUT_SECONDS": "60",
    }


def ensure_litellm() -> tuple[Path | None, str]:
    """LiteLLM's proxy in its own cached virtual environment (created on first use with
    `pip install 'litellm[proxy]'`): the binary and its version, or None and why not."""
    binary = LITELLM_VENV / "bin" / "litellm"
    python = LITELLM_VENV / "bin" / "python"
    if not binary.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "litellm[proxy]"],
                check=True,
                timeout=900,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            return None, f"LiteLLM could not be installed ({exc}); the run goes on without it"
    version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return binary, version


def start_litellm(binary: Path, upstream: Process, workdir: Path) -> Process:
    """The proxy with one worker and one model routed to the fake upstream."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {LITELLM_MODEL}\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4.1-mini\n"
        f"      api_base: {upstream.url}/v1\n"
        "      api_key: bench-key\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
        "  set_verbose: false\n"
        "  num_retries: 0\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_PROVIDER_SERVICE_")}
    env.update(
        {
            "LITELLM_MASTER_KEY": LITELLM_KEY,
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "NO_DOCS": "True",
        }
    )
    command = [str(binary), "--config", str(config), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--num_workers", "1"]
    log = workdir / "litellm.log"
    process = _start("litellm", f"http://127.0.0.1:{port}", command, env, log)
    wait_ready(process, "/health/liveliness", within=180)
    return process
