"""Which callback URLs the service delivers to: `WebhookPolicy`, its address checks and the
stable refusal reasons.

`WebhookPolicy.check_url` runs when a request names a `callback_url` (no DNS: a literal IP is
judged, a name only against the allowed hosts). At delivery `checked_addresses` resolves the
host once and refuses it when any of its addresses is not public (unless private addresses are
allowed); the sender (`delivery/webhook.py`) then connects only to those addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from services.llm_provider_service.delivery import host_patterns
from services.llm_provider_service.errors import CallbackNotAllowedError
from services.llm_provider_service.settings import WebhookSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_CHARS: Final = 2048

# Stable `details["reason"]` values of CallbackNotAllowedError and WebhookRefused.
INVALID_URL: Final = "invalid_url"
SCHEME_NOT_ALLOWED: Final = "scheme_not_allowed"
USERINFO_NOT_ALLOWED: Final = "userinfo_not_allowed"
HOST_NOT_ALLOWED: Final = "host_not_allowed"
ADDRESS_NOT_ALLOWED: Final = "address_not_allowed"

_HOSTNAME: Final = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


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


def ip_literal(host: str) -> IPAddress | None:
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


@dataclass(frozen=True, slots=True, init=False)
class WebhookPolicy:
    """Which callback URLs the service delivers to, by its section of the settings
    (`WEBHOOK_*`; the default section allows none).

    `allowed_hosts` are fnmatch patterns matched against the whole host name, case-insensitive
    (`*` matches dots too: `*.example.com` allows `a.b.example.com` but not `example.com`).
    An IP host is matched in its canonical spelling. No patterns: no callback URL at all."""

    allowed_hosts: tuple[str, ...]
    allow_private_addresses: bool
    allow_http: bool

    def __init__(self, settings: WebhookSettings | None = None) -> None:
        settings = settings or WebhookSettings()
        set_field = object.__setattr__  # frozen: set once, here
        set_field(self, "allowed_hosts", host_patterns.normalized(settings.allowed_hosts))
        set_field(self, "allow_private_addresses", settings.allow_private_addresses)
        set_field(self, "allow_http", settings.allow_http)

    def check_url(self, url: str) -> None:
        """Raise CallbackNotAllowedError (details `field`, `reason`) unless `url` may be
        called back. No DNS lookup: a host name is judged by the allowed hosts alone."""
        self.target(url)

    def target(self, url: str) -> CallbackTarget:
        """`check_url`, returning what it read from the URL."""
        schemes = ("https", "http") if self.allow_http else ("https",)
        scheme, netloc, host, port = _split(url, schemes)
        bracketed = netloc.startswith("[")
        address = ip_literal(host)
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
        literal = ip_literal(host)
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
