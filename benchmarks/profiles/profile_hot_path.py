"""Profile of the service's own cost on the real-time path to OpenAI, through the real SDK.

Starts the lean fake OpenAI upstream (`benchmarks/gateway/upstream.py`, answering after
20 ms) and `python -m services.llm_provider_service serve` with the OpenAI provider's base
URL pointed at it, then:

1. c=1: p50 of the fake upstream called directly, and p50 through the service: the
   difference is the service's overhead on one request;
2. c=50: throughput, and the service process's CPU per request (user + system time from
   /proc over the measured requests, so the load generator's CPU does not count);
3. with `--profile`, a second service run under pyinstrument at c=50, whose text summary
   (the top frames) is written to `--out`.

The load generator is raw asyncio over keep-alive connections, so that its own cost stays
small on a 2-core machine. Timings on a shared machine are noisy: say so when reporting.

    python -m benchmarks.profiles.profile_hot_path                       # numbers only
    python -m benchmarks.profiles.profile_hot_path --profile --out benchmarks/profiles/after.txt
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BODY = json.dumps(
    {
        "user_prompt": "Which essay argues its thesis better? {essay_a} versus {essay_b}",
        "essay_a": "A careful argument with evidence. " * 40,
        "essay_b": "A lively story without evidence. " * 40,
        "llm_config_overrides": {"provider_override": "openai"},
    }
).encode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer sk-fake\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _one_connection(
    port: int, raw: bytes, count: int, latencies: list[float], statuses: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            started = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


@dataclass
class Load:
    latencies_ms: list[float]
    seconds: float
    statuses: dict[int, int]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds


async def _drive(port: int, path: str, body: bytes, requests: int, concurrency: int) -> Load:
    raw = _request(path, body)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    per_connection = max(1, requests // concurrency)
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _one_connection(port, raw, per_connection, latencies, statuses)
            for _ in range(concurrency)
        )
    )
    return Load(latencies, time.perf_counter() - started, statuses)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_service(
    port: int, upstream: int, profile_out: Path | None, extra: list[str]
) -> subprocess.Popen[bytes]:
    """`serve` on the fake upstream; `extra` are `KEY=VALUE` settings (`--env`) over the
    filtered environment, e.g. `LLM_PROVIDER_SERVICE_VENDOR_HTTP_TRANSPORT=httpx`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_PROVIDER_SERVICE_")}
    env.update(
        {
            "ENVIRONMENT": "testing",
            "LLM_PROVIDER_SERVICE_PORT": str(port),
            "LLM_PROVIDER_SERVICE_OPENAI_API_KEY": "sk-fake",
            "LLM_PROVIDER_SERVICE_OPENAI_BASE_URL": f"http://127.0.0.1:{upstream}/v1",
            "LLM_PROVIDER_SERVICE_OPENAI_MAX_CONCURRENCY": "200",
        }
    )
    for item in extra:
        key, _, value = item.partition("=")
        env[key] = value
    command = [sys.executable]
    if profile_out is not None:
        command += ["-m", "benchmarks.profiles.run_profiled", str(profile_out)]
    else:
        command += ["-m", "services.llm_provider_service", "serve"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def _wait_listening(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def _stop(process: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def _measure(args: argparse.Namespace, upstream: int) -> None:
    port = _free_port()
    service = _start_service(port, upstream, None, args.env)
    try:
        await _wait_listening(port)
        await _drive(port, "/api/v1/comparison", BODY, 200, 10)  # warm-up
        direct = await _drive(upstream, "/v1/chat/completions", b"{}", args.sequential, 1)
        cpu_before = _cpu_seconds(service.pid)
        through = await _drive(port, "/api/v1/comparison", BODY, args.sequential, 1)
        sequential_cpu = _cpu_seconds(service.pid) - cpu_before
        cpu_before = _cpu_seconds(service.pid)
        loaded = await _drive(port, "/api/v1/comparison", BODY, args.requests, args.concurrency)
        cpu = _cpu_seconds(service.pid) - cpu_before
    finally:
        _stop(service)
    print(
        f"c=1:  direct p50 {direct.p50:.2f} ms, service p50 {through.p50:.2f} ms, "
        f"overhead {through.p50 - direct.p50:+.2f} ms, service CPU "
        f"{sequential_cpu / len(through.latencies_ms) * 1000:.2f} ms/request  "
        f"statuses {through.statuses}"
    )
    print(
        f"c={args.concurrency}: {loaded.throughput:,.0f} req/s, p50 {loaded.p50:.1f} ms, "
        f"service CPU {cpu / len(loaded.latencies_ms) * 1000:.2f} ms/request  "
        f"statuses {loaded.statuses}"
    )


async def _profile(args: argparse.Namespace, upstream: int) -> None:
    port = _free_port()
    service = _start_service(port, upstream, args.out, args.env)
    try:
        await _wait_listening(port)
        await _drive(port, "/api/v1/comparison", BODY, 200, 10)
        loaded = await _drive(port, "/api/v1/comparison", BODY, args.requests, args.concurrency)
    finally:
        _stop(service, seconds=600.0)  # the summary of a long session takes a while
    print(
        f"profiled c={args.concurrency}: {loaded.throughput:,.0f} req/s under the profiler, "
        f"statuses {loaded.statuses}; written to {args.out}"
    )


async def _main(args: argparse.Namespace, upstream: int) -> None:
    await _wait_listening(upstream)
    await _measure(args, upstream)
    if args.profile:
        await _profile(args, upstream)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="a setting for serve"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/profiles/profile.txt")
    args = parser.parse_args()
    upstream = _free_port()
    fake_command = [sys.executable, "-m", "benchmarks.gateway.upstream"]
    fake_command += ["--port", str(upstream), "--latency-ms", str(args.latency_ms)]
    fake = subprocess.Popen(fake_command, cwd=ROOT)
    try:
        asyncio.run(_main(args, upstream))
    finally:
        fake.terminate()
        fake.wait()


if __name__ == "__main__":
    main()
