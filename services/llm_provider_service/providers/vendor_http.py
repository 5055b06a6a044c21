"""The HTTP client under the httpx2-based vendor SDKs (openai for OpenAI and OpenRouter,
anthropic): the SDK's own default client on `LeanTransport`, or None to keep the SDK's own
stack (httpcore2).

`VENDOR_HTTP_TRANSPORT=httpx` is the operators' way back to the SDK's stack. The lean
transport is also left out whenever a proxy environment variable is set (HTTP_PROXY,
HTTPS_PROXY, ALL_PROXY, in any case): httpx2 reads those only for its own transports, so a
given transport would bypass the proxy.
"""

from __future__ import annotations

import os
import socket
from typing import Literal

import httpx2

from services.llm_provider_service.providers.lean_transport import LeanTransport, SocketOption

VendorHttpTransport = Literal["lean", "httpx"]
_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})


def proxy_configured() -> bool:
    """Whether the environment names a proxy that httpx2's own transport would use."""
    return any(k.lower() in _PROXY_VARIABLES and v for k, v in os.environ.items())


def tcp_keepalive_options() -> tuple[SocketOption, ...]:
    """The TCP keep-alive probes the anthropic SDK sets on its own sockets (every 60 s after
    60 s idle, 5 tries), so that a lean transport under it keeps them."""
    options: list[SocketOption] = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPINTVL", 60), ("TCP_KEEPCNT", 5), ("TCP_KEEPIDLE", 60)):
        option = getattr(socket, name, None)
        if option is not None:
            options.append((socket.IPPROTO_TCP, option, value))
    return tuple(options)


def sdk_http_client(
    factory: type[httpx2.AsyncClient],
    kind: VendorHttpTransport,
    *,
    base_url: str | None,
    timeout: float,
    max_connections: int,
    socket_options: tuple[SocketOption, ...] = (),
) -> httpx2.AsyncClient | None:
    """`factory` (the SDK's `DefaultAsyncHttpxClient`: its redirects and defaults) on a
    `LeanTransport` of `max_connections` per origin, with the base URL and timeout the SDK
    gives its own client; None where the SDK's own stack is to be kept."""
    if kind == "httpx" or proxy_configured():
        return None
    transport = LeanTransport(max_connections=max_connections, socket_options=socket_options)
    return factory(base_url=base_url or "", timeout=timeout, transport=transport)
