"""A fake OpenAI chat-completions upstream that answers every request after a fixed latency.

It runs in its own process on raw asyncio (no framework, no JSON parsing of the request), so
that it costs a few microseconds per request and never becomes what the benchmark measures.
Every `POST .../chat/completions` gets the same valid chat completion whose content is a
judgement the service accepts; anything else gets 404.

    python -m benchmarks.gateway.upstream --port 9000 --latency-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

JUDGEMENT = {
    "winner": "Essay A",
    "justification": "Essay A supports its thesis with evidence; Essay B only tells a story.",
    "confidence": 4,
}
MODEL = "gpt-4.1-mini"


def completion_body() -> bytes:
    """One chat completion as OpenAI sends it (the id and timestamp fixed: nothing reads
    them, and building them per request would cost the upstream time)."""
    content = json.dumps(JUDGEMENT, separators=(",", ":"))
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 420, "completion_tokens": 40, "total_tokens": 460},
        "system_fingerprint": "fp_bench",
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nx-request-id: req_bench\r\n\r\n"
    )
    return head.encode() + body


OK = _response("200 OK", completion_body())
NOT_FOUND = _response("404 Not Found", b'{"error":{"message":"not found"}}')


class UpstreamProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive: reads each request whole (headers, then `content-length`
    bytes) and writes its answer `latency` seconds later, in order of arrival."""

    def __init__(self, latency: float) -> None:
        self._latency = latency
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length :]
            method, path = head.split(" ", 2)[:2]
            found = method == "POST" and path.rstrip("/").endswith("/chat/completions")
            reply = OK if found else NOT_FOUND
            asyncio.get_running_loop().call_later(self._latency, self._send, reply)

    def _send(self, reply: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(reply)


async def serve(port: int, latency_ms: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: UpstreamProtocol(latency_ms / 1000), "127.0.0.1", port, backlog=4096
    )
    print(f"fake upstream on 127.0.0.1:{port}, latency {latency_ms} ms", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    arguments = parser.parse_args()
    asyncio.run(serve(arguments.port, arguments.latency_ms))
