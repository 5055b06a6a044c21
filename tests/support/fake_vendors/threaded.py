"""An ASGI app served by Hypercorn on 127.0.0.1 from a thread with its own event loop.

The tests that drive it run their own loops (pytest-asyncio's, one per test) and may block
them; a server in its own thread answers all the same, and outlives any one test loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Any

from hypercorn.asyncio import serve

from devtools.asgi import hypercorn_config, listening_socket

HOST = "127.0.0.1"
START_SECONDS = 10.0
STOP_SECONDS = 10.0


class ThreadedServer:
    """`start()` binds a port (or the one asked for) and serves `app` until `stop()`, which
    ends requests still in flight at once: their clients see the connection close."""

    def __init__(self, app: Any, *, name: str, port: int = 0) -> None:
        self._app = app
        self._name = name
        self._requested_port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        """Set (on the server's loop) when the server starts to stop."""
        self._served = threading.Event()
        self._error: BaseException | None = None
        self.port: int | None = None
        """The bound port while serving, else None."""

    def start(self) -> None:
        if self._thread is not None:
            return
        listener = listening_socket(HOST, self._requested_port)
        port = int(listener.getsockname()[1])
        ready = threading.Event()
        self._served.clear()
        self._error = None
        self._thread = threading.Thread(
            target=self._run, args=(listener, ready), name=self._name, daemon=True
        )
        self._thread.start()
        if not ready.wait(START_SECONDS) or self._error is not None:
            self.stop()
            raise RuntimeError(f"{self._name} did not start") from self._error
        self.port = port

    def stop(self) -> None:
        thread, loop, stopping = self._thread, self._loop, self.stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has just closed on its own
                loop.call_soon_threadsafe(stopping.set)
        thread.join(STOP_SECONDS)
        if thread.is_alive():
            raise RuntimeError(f"{self._name}'s thread did not stop within {STOP_SECONDS} s")
        self._thread = None
        self.port = None

    def _run(self, listener: socket.socket, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(listener, ready))
        except BaseException as error:  # reported to start(); the thread just ends
            self._error = error
        finally:
            ready.set()
            _cancel_the_rest(loop)
            loop.close()
            self._loop = None

    async def _serve(self, listener: socket.socket, ready: threading.Event) -> None:
        self.stopping = asyncio.Event()
        config = hypercorn_config(listener, self._name)
        ready.set()
        await serve(self._app, config, shutdown_trigger=self.stopping.wait)


def _cancel_the_rest(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what the server left running on `loop` and let it finish."""
    for _ in range(10):
        others = [task for task in asyncio.all_tasks(loop) if not task.done()]
        if not others:
            break
        for task in others:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*others, return_exceptions=True))
    with contextlib.suppress(Exception):
        loop.run_until_complete(loop.shutdown_asyncgens())
