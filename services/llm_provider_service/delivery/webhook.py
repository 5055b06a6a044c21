"""Webhook delivery: which callback URLs are allowed, and one signed POST to one of them.

`WebhookPolicy.check_url` runs when a request names a `callback_url` (no DNS: a literal IP is
judged, a name only against the allowed hosts). `WebhookSender.send` checks again at delivery
time, resolves the host once and refuses it when any of its addresses is not public (unless
private addresses are allowed), then POSTs the body signed as `common_core.webhooks` describes,
over a connection to one of the addresses it checked. It answers with a `WebhookOutcome`
(delivered, retry later, or rejected for good) and never raises for a network problem; what to
do with a retry is the caller's business.

Pinning (against DNS rebinding): a client from `build_client` connects through
`PinnedNetworkBackend`, which never resolves a name. `send` hands it the checked addresses of
the one host it is sending to (a context variable, read in the task that opens the connection);
the backend connects to those, and refuses a name it was not given. The URL is unchanged, so
the Host header, TLS server name (SNI) and certificate check are still for the name, and the
connection pool stays keyed by the name. A client passed in that does not come from
`build_client` resolves names itself and is not pinned.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import ipaddress
import re
import socket
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Final, Self, cast
from urllib.parse import urlsplit

import httpcore
import httpx

from common_core.webhooks import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign
from services.llm_provider_service.delivery import host_patterns
from services.llm_provider_service.errors import CallbackNotAllowedError
from services.llm_provider_service.providers.http_errors import retry_after_seconds
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.tracing import carrier

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

USER_AGENT: Final = "llm-provider-service-webhooks/1"
MAX_URL_CHARS: Final = 2048
MAX_RESPONSE_BYTES: Final = 4096
"""How much of a receiver's answer is read (for the error text); the rest is discarded."""

# Stable `details["reason"]` values of CallbackNotAllowedError and WebhookRefused.
INVALID_URL: Final = "invalid_url"
SCHEME_NOT_ALLOWED: Final = "scheme_not_allowed"
USERINFO_NOT_ALLOWED: Final = "userinfo_not_allowed"
HOST_NOT_ALLOWED: Final = "host_not_allowed"
ADDRESS_NOT_ALLOWED: Final = "address_not_allowed"

_HOSTNAME: Final = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_RETRY_STATUSES: Final = frozenset({408, 425, 429})


class WebhookRefused(Exception):  # noqa: N818  (a refusal, the name the delivery design uses)
    """The callback host resolved to an address the policy does not allow."""

    def __init__(self, message: str, *, reason: str = ADDRESS_NOT_ALLOWED) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def is_public_address(address: IPAddress) -> bool:
    """False for private, loopback, link-local, reserved, multicast, unspecified, shared
    (CGNAT) and other non-global addresses. IPv6 that carries an IPv4 address is judged by
    it: IPv4-mapped and NAT64 by the IPv4 address alone, 6to4 and Teredo by both."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        embedded = address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None and not is_public_address(embedded):
            return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global
    )


def _ip_literal(host: str) -> IPAddress | None:
    """`host` as an IP address, including the legacy IPv4 spellings the resolver accepts
    (`127.1`, `0x7f.0.0.1`, `2130706433`); None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c.isascii() and (c.isalnum() or c == ".") for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class CallbackTarget:
    """A callback URL as the policy read it."""

    scheme: str
    host: str
    """Lower-case, without a trailing dot or IPv6 brackets; an IP in its canonical form."""
    port: int
    address: IPAddress | None
    """The host as an IP address, when the URL names one."""


def _refuse(reason: str, message: str) -> CallbackNotAllowedError:
    return CallbackNotAllowedError(
        f"callback_url {message}", details={"field": "callback_url", "reason": reason}
    )


def _split(url: str, schemes: tuple[str, ...]) -> tuple[str, str, str, int | None]:
    """Scheme, netloc, hostname and port of an absolute URL; CallbackNotAllowedError else."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise _refuse(INVALID_URL, f"must be a URL of at most {MAX_URL_CHARS} characters")
    if not url.isascii() or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise _refuse(INVALID_URL, "must be ASCII without spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise _refuse(INVALID_URL, f"is not a valid URL: {e}") from e
    scheme = parts.scheme.lower()
    if not scheme:
        raise _refuse(INVALID_URL, "must be an absolute URL (scheme://host/path)")
    if scheme not in schemes:
        raise _refuse(SCHEME_NOT_ALLOWED, f"must use {' or '.join(schemes)}")
    if "@" in parts.netloc:
        raise _refuse(USERINFO_NOT_ALLOWED, "must not contain a user name or password")
    if not parts.hostname:
        raise _refuse(INVALID_URL, "must be an absolute URL (scheme://host/path)")
    if port == 0:
        raise _refuse(INVALID_URL, "must not name port 0")
    return scheme, parts.netloc, parts.hostname.lower(), port


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """Which callback URLs the service delivers to (see the `webhook_*` settings).

    `allowed_hosts` are fnmatch patterns matched against the whole host name, case-insensitive
    (`*` matches dots too: `*.example.com` allows `a.b.example.com` but not `example.com`).
    An IP host is matched in its canonical spelling. No patterns: no callback URL at all."""

    allowed_hosts: tuple[str, ...] = ()
    allow_private_addresses: bool = False
    allow_http: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_hosts", host_patterns.normalized(self.allowed_hosts))

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            allowed_hosts=tuple(settings.webhook_allowed_hosts),
            allow_private_addresses=settings.webhook_allow_private_addresses,
            allow_http=settings.webhook_allow_http,
        )

    def check_url(self, url: str) -> None:
        """Raise CallbackNotAllowedError (details `field`, `reason`) unless `url` may be
        called back. No DNS lookup: a host name is judged by the allowed hosts alone."""
        self.target(url)

    def target(self, url: str) -> CallbackTarget:
        """`check_url`, returning what it read from the URL."""
        schemes = ("https", "http") if self.allow_http else ("https",)
        scheme, netloc, host, port = _split(url, schemes)
        bracketed = netloc.startswith("[")
        address = _ip_literal(host)
        if address is None:
            host = host.removesuffix(".")
            if bracketed or len(host) > 253 or not _HOSTNAME.fullmatch(host):
                raise _refuse(INVALID_URL, "has an invalid host")
        else:
            host = str(address)
        if not self.allowed_hosts:
            raise _refuse(HOST_NOT_ALLOWED, "is not accepted: no callback hosts are allowed")
        if not host_patterns.matches(host, self.allowed_hosts):
            raise _refuse(HOST_NOT_ALLOWED, f"host {host!r} is not an allowed callback host")
        if address is not None and not self._address_allowed(address):
            raise _refuse(ADDRESS_NOT_ALLOWED, f"host {host} is not a public address")
        return CallbackTarget(scheme, host, port or (443 if scheme == "https" else 80), address)

    def _address_allowed(self, address: IPAddress) -> bool:
        return self.allow_private_addresses or is_public_address(address)

    async def resolve_and_check(self, host: str, port: int) -> None:
        """Resolve `host` and raise WebhookRefused if any of its addresses is not allowed
        (one private address among public ones is enough: DNS rebinding). A failed lookup
        raises OSError (socket.gaierror), which is worth retrying. With private addresses
        allowed, nothing is resolved."""
        if self.allow_private_addresses:
            return
        await self.checked_addresses(host, port)

    async def checked_addresses(self, host: str, port: int) -> tuple[IPAddress, ...]:
        """The addresses of `host` (an IP literal is its own), resolved once, in the
        resolver's order without repeats, each one allowed: WebhookRefused if any is not
        (unless private addresses are allowed), OSError if the lookup fails or is empty."""
        literal = _ip_literal(host)
        if literal is not None:
            found: tuple[IPAddress, ...] = (literal,)
        else:
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            if not infos:
                raise OSError(f"{host} resolved to no address")
            addresses: list[IPAddress] = []
            for info in infos:
                text = str(info[4][0])
                try:
                    address: IPAddress = ipaddress.ip_address(text)
                except ValueError:
                    raise WebhookRefused(
                        f"{host} resolved to {text!r}, not an IP address"
                    ) from None
                if address not in addresses:
                    addresses.append(address)
            found = tuple(addresses)
        if not self.allow_private_addresses:
            for address in found:
                if not is_public_address(address):
                    raise WebhookRefused(f"{host} resolves to {address}, which is not public")
        return found


class OutcomeKind(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    """Worth trying again later (timeouts, connection errors, 408, 425, 429, 5xx)."""
    REJECTED = "rejected"
    """Permanent: trying again will not help (other 4xx, redirects, refused URLs)."""


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """What one delivery attempt came to."""

    kind: OutcomeKind
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    """Seconds the receiver asked us to wait (Retry-After on a retry answer), if it did."""

    @property
    def delivered(self) -> bool:
        return self.kind is OutcomeKind.DELIVERED


_PINNED: Final[contextvars.ContextVar[Mapping[tuple[str, int], tuple[IPAddress, ...]] | None]] = (
    contextvars.ContextVar("webhook_pinned_addresses", default=None)
)
"""(host, port) -> the checked addresses `PinnedNetworkBackend` may connect that host to; set
by `WebhookSender.send` around its request (`pinned_to`)."""


def _host_key(host: str) -> str:
    literal = _ip_literal(host)
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


def _classify(response: httpx.Response, text: str) -> WebhookOutcome:
    status = response.status_code
    if 200 <= status < 300:
        return WebhookOutcome(OutcomeKind.DELIVERED, status)
    if 300 <= status < 400:
        return WebhookOutcome(OutcomeKind.REJECTED, status, "redirect not followed")
    error = (f"receiver answered {status}: {text}" if text else f"receiver answered {status}")[:500]
    if status in _RETRY_STATUSES or 500 <= status < 600:
        return WebhookOutcome(
            OutcomeKind.RETRY, status, error, retry_after_seconds(response.headers)
        )
    return WebhookOutcome(OutcomeKind.REJECTED, status, error)


def _header_safe(name: str, value: str) -> str:
    if not value or not value.isascii() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(f"{name} must be printable ASCII, not {value!r}")
    return value


class WebhookSender:
    """Delivers signed webhook bodies, one attempt per `send`.

    A client passed in stays the caller's (the sender never closes it); with `client=None`
    the sender builds one with `build_client` and `close()` (or `async with`) closes it."""

    def __init__(
        self,
        client: httpx.AsyncClient | None,
        policy: WebhookPolicy,
        secret: bytes,
        *,
        timeout_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("a webhook signing secret must not be empty")
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self._owns_client = client is None
        self._client = (
            client if client is not None else build_client(timeout_seconds=timeout_seconds)
        )
        self._policy = policy
        self._secret = secret
        self._timeout = timeout_seconds
        self._clock = clock

    async def close(self) -> None:
        """Close the client if the sender built it; a caller's client is left open."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(
        self, url: str, body: bytes, *, event_id: str, event_type: str
    ) -> WebhookOutcome:
        """POST `body` (JSON) to `url`, signed, within `timeout_seconds` in all.

        ValueError for an `event_id` or `event_type` that cannot be a header value (a bug of
        the caller's); every network or receiver problem is an outcome instead. The current
        span's W3C `traceparent` (and `tracestate`) go with it when there is one."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "identity",
            EVENT_ID_HEADER: _header_safe("event_id", event_id),
            EVENT_TYPE_HEADER: _header_safe("event_type", event_type),
            **carrier(),  # `traceparent` of the current span (the relay's delivery span)
        }
        try:
            target = self._policy.target(url)
        except CallbackNotAllowedError as e:
            return WebhookOutcome(OutcomeKind.REJECTED, error=e.message)
        headers[SIGNATURE_HEADER] = sign(self._secret, body, timestamp=int(self._clock()))
        try:
            async with asyncio.timeout(self._timeout):
                addresses = await self._policy.checked_addresses(target.host, target.port)
                with pinned_to(target.host, target.port, addresses):
                    return await self._post(url, body, headers)
        except WebhookRefused as e:
            return WebhookOutcome(OutcomeKind.REJECTED, error=e.message)
        except (TimeoutError, httpx.TimeoutException):
            return WebhookOutcome(OutcomeKind.RETRY, error=f"no answer within {self._timeout:g} s")
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
            return WebhookOutcome(OutcomeKind.REJECTED, error=f"cannot call {url}: {e}"[:500])
        except (httpx.HTTPError, OSError) as e:
            detail = str(e) or type(e).__name__
            return WebhookOutcome(OutcomeKind.RETRY, error=f"cannot reach receiver: {detail}"[:500])

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> WebhookOutcome:
        request = self._client.build_request(
            "POST", url, content=body, headers=headers, timeout=httpx.Timeout(self._timeout)
        )
        response = await self._client.send(request, stream=True, follow_redirects=False)
        received = bytearray()
        try:
            chunks = cast(AsyncGenerator[bytes, None], response.aiter_raw())
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    received += chunk
                    if len(received) >= MAX_RESPONSE_BYTES:
                        break
        finally:
            await response.aclose()
        text = bytes(received[:MAX_RESPONSE_BYTES]).decode("utf-8", "replace").strip()
        return _classify(response, " ".join(text.split())[:300])
