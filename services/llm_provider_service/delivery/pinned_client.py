"""The webhook HTTP client: connections pinned to the addresses the policy checked.

Pinning (against DNS rebinding): a client from `build_client` connects through
`PinnedNetworkBackend`, which never resolves a name. `WebhookSender.send` hands it the checked
addresses of the one host it is sending to (`pinned_to`: a context variable, read in the task
that opens the connection); the backend connects to those, and refuses a name it was not given.
The URL is unchanged, so the Host header, TLS server name (SNI) and certificate check are still
for the name, and the connection pool stays keyed by the name. A client passed in that does not
come from `build_client` resolves names itself and is not pinned.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator, Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Final

import httpcore
import httpx

from services.llm_provider_service.delivery.webhook_policy import IPAddress, ip_literal

USER_AGENT: Final = "llm-provider-service-webhooks/1"


_PINNED: Final[contextvars.ContextVar[Mapping[tuple[str, int], tuple[IPAddress, ...]] | None]] = (
    contextvars.ContextVar("webhook_pinned_addresses", default=None)
)
"""(host, port) -> the checked addresses `PinnedNetworkBackend` may connect that host to; set
by `WebhookSender.send` around its request (`pinned_to`)."""


def _host_key(host: str) -> str:
    literal = ip_literal(host)
    return str(literal) if literal is not None else host.lower().removesuffix(".")


@contextlib.contextmanager
def pinned_to(host: str, port: int, addresses: Iterable[IPAddress]) -> Iterator[None]:
    """Within the block (and the current task), connections to `host:port` through a
    `PinnedNetworkBackend` go to `addresses`, in order, and to nothing else."""
    token = _PINNED.set({(_host_key(host), port): tuple(addresses)})
    try:
        yield
    finally:
        _PINNED.reset(token)


class PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network layer for webhooks: connects only to addresses pinned with
    `pinned_to`, trying them in order, and never resolves a name (so a second DNS answer
    cannot move the connection). A host that was not pinned is an `httpcore.ConnectError`."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = (_PINNED.get() or {}).get((_host_key(host), port))
        if not addresses:
            raise httpcore.ConnectError(f"{host}:{port} was not checked before connecting")
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                failure = e
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are not sent over Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def build_client(*, timeout_seconds: float = 10.0, max_connections: int = 64) -> httpx.AsyncClient:
    """A client fit for webhooks: no redirects, no proxy or other environment settings, no
    cookies kept, bounded connection pool, connections pinned (`PinnedNetworkBackend`)."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max(1, max_connections // 4),
        keepalive_expiry=30.0,
    )
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    # httpx has no public hook for the network backend: swap in a pool built like its own
    # (`AsyncHTTPTransport.__init__` without a proxy) with the pinned one. The rebinding
    # tests in tests/integration/delivery/test_webhook_sender.py fail if this stops working.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=PinnedNetworkBackend(),
    )
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout_seconds),
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        headers={"User-Agent": USER_AGENT},
    )
