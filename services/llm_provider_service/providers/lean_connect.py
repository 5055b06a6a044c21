"""Opening a socket to a vendor for `lean_transport`, trying its addresses as httpcore2 does.

A vendor's host name resolves to several addresses (IPv6 and IPv4, several of each). Trying
them one after another, each under the whole connect timeout, stalls every call for that
timeout when the first address silently drops packets (a broken IPv6 route is the usual
case), where httpcore2 (through anyio) starts the next attempt 250 ms after the last one
started ("Happy Eyeballs", RFC 8305) and keeps the first socket that connects. uvloop's
`create_connection` has no `happy_eyeballs_delay`, so the race is here, and the transport
hands the connected socket to `create_connection(sock=...)`.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Sequence
from typing import Any

ATTEMPT_DELAY_SECONDS = 0.25
"""How long an attempt has before the next address is tried beside it (RFC 8305's 250 ms)."""

_AddressInfo = tuple[int, int, int, str, Any]


async def open_socket(
    loop: asyncio.AbstractEventLoop,
    host: str,
    port: int,
    *,
    delay: float = ATTEMPT_DELAY_SECONDS,
) -> socket.socket:
    """A connected, non-blocking TCP socket to `host`: the first of its addresses to accept,
    the next attempt started `delay` seconds after the last while none has. Raises OSError
    (the resolver's, or the last attempt's) when none accepts; the caller bounds the whole."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"no address for {host}")
    attempts: set[asyncio.Task[socket.socket]] = set()
    errors: list[OSError] = []
    try:
        for info in _interleaved(infos):
            attempts.add(loop.create_task(_connect(loop, info)))
            winner = await _first(attempts, errors, within=delay)
            if winner is not None:
                return winner
        while attempts:
            winner = await _first(attempts, errors, within=None)
            if winner is not None:
                return winner
    finally:
        for attempt in attempts:  # the losers: cancelled, or closed if they connected late
            attempt.cancel()
            attempt.add_done_callback(_close_result)
    raise errors[-1] if errors else OSError(f"could not connect to {host}")


async def _first(
    attempts: set[asyncio.Task[socket.socket]], errors: list[OSError], *, within: float | None
) -> socket.socket | None:
    """The socket of the first attempt to connect within `within` seconds, else None (the failed
    ones' errors kept, and the failed ones dropped)."""
    if not attempts:
        return None
    done, _ = await asyncio.wait(attempts, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    for attempt in done:
        attempts.discard(attempt)
    winner: socket.socket | None = None
    for attempt in done:
        error = attempt.exception()
        if error is None and winner is None:
            winner = attempt.result()
        elif error is None:
            attempt.result().close()  # two connected in the same turn: keep one
        elif isinstance(error, OSError):
            errors.append(error)
        else:
            raise error
    return winner


async def _connect(loop: asyncio.AbstractEventLoop, info: _AddressInfo) -> socket.socket:
    family, kind, proto, _, address = info
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


def _interleaved(infos: Sequence[_AddressInfo]) -> list[_AddressInfo]:
    """The addresses alternating between families, in the resolver's order within each
    (RFC 8305: a broken family costs one attempt's delay, not all of its addresses)."""
    families: dict[int, list[_AddressInfo]] = {}
    for info in infos:
        families.setdefault(info[0], []).append(info)
    rounds = itertools.zip_longest(*families.values())
    return [info for group in rounds for info in group if info is not None]


def _close_result(attempt: asyncio.Task[socket.socket]) -> None:
    if not attempt.cancelled() and attempt.exception() is None:
        attempt.result().close()
