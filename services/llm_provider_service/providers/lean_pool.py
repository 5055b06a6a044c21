"""One origin's connections for `lean_transport`: the idle ones, how many are open, and the
requests waiting for one. Kept apart from the transport so that the rules of reuse read in
one place: only a response read whole returns its connection; an idle connection is reused
only while younger than the keep-alive expiry (httpx2's default is 5 s, so a server's own
idle timeout rarely races a request) and while its socket shows no EOF (`stale`)."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from services.llm_provider_service.providers.lean_connection import LeanConnection


class OriginPool:
    """The connections to one (scheme, host, port); `count` are open, `live` the open ones."""

    __slots__ = ("count", "expiry", "idle", "live", "waiters")

    def __init__(self, expiry: float) -> None:
        self.expiry = expiry
        self.idle: list[tuple[LeanConnection, float]] = []  # with when it went idle
        self.live: set[LeanConnection] = set()
        self.count = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    def take_idle(self) -> LeanConnection | None:
        """The most recently used idle connection still fit for a request; closes the expired
        and stale ones it meets (the oldest first)."""
        now = time.monotonic()
        idle = self.idle
        while idle and now - idle[0][1] > self.expiry:
            self.discard(idle.pop(0)[0])
        while idle:
            conn = idle.pop()[0]
            if not conn.stale():
                return conn
            self.discard(conn)
        return None

    def release(self, conn: LeanConnection) -> None:
        """Back to the idle list if its response was read whole and it may be kept, else
        closed; either way a waiting request is woken."""
        if conn.reusable:
            self.idle.append((conn, time.monotonic()))
            self.wake()
        else:
            self.discard(conn)

    def discard(self, conn: LeanConnection) -> None:
        conn.close()
        if conn in self.live:
            self.live.discard(conn)
            self.count -= 1
            self.wake()

    def close(self) -> None:
        """Close every connection and wake every waiting request (the transport, closed,
        turns them away)."""
        for conn in list(self.live):
            self.discard(conn)
        self.idle.clear()
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def wake(self) -> None:
        """Wake the first request still waiting for a connection."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
