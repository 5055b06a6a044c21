"""`serve`: one Hypercorn server with its own container and app, either the whole service
(one process) or one of the processes `ServeProcesses` spawns on a shared socket."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from dataclasses import dataclass

from dishka import AsyncContainer
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app

from services.llm_provider_service import event_loop
from services.llm_provider_service.app import create_app
from services.llm_provider_service.di import (
    check_dependencies,
    known_dependencies,
    make_container,
)
from services.llm_provider_service.logging_setup import configure_logging
from services.llm_provider_service.server_errors import use_json_protocol_errors
from services.llm_provider_service.settings import ConfigurationError, Settings, load_settings

logger = logging.getLogger("llm_provider_service")

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class SpawnedProcess:
    """What a serve process gets from its parent (pickled across the spawn): its place among
    the processes, the sockets the parent bound, and what the parent's start-up checks found
    (so that N processes neither check nor warn N times)."""

    index: int
    count: int
    sockets: Sockets
    durability_problems: list[str] | None


def hypercorn_config(settings: Settings) -> Config:
    """Hypercorn's configuration for `serve`."""
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    # Hypercorn's error log goes through the root handlers like every other line: one format,
    # the broker-noise filter and the secret redaction (`redact_logs`) apply to it too.
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = settings.worker.shutdown_grace_seconds + 5.0
    return config


def stop_event(*signals: signal.Signals) -> asyncio.Event:
    """An event set by any of `signals`, so each stops the process gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    return stop


async def checked_container(settings: Settings) -> AsyncContainer:
    """The container, after the start-up checks passed (they may refuse to start)."""
    container = make_container(settings)
    try:
        await check_dependencies(container, settings)
    except BaseException:
        await container.close()
        raise
    return container


async def start_up_checks(settings: Settings) -> list[str] | None:
    """The start-up checks alone, in a container of their own (the parent of several serve
    processes runs them once); what the durability check found."""
    container = make_container(settings)
    try:
        return await check_dependencies(container, settings)
    finally:
        await container.close()


async def serve(settings: Settings, spawned: SpawnedProcess | None = None) -> None:
    """Serve until SIGTERM (or SIGINT, alone): the app on its own sockets, or, as a spawned
    process, on the parent's, which only the parent's SIGTERM stops (SIGINT stays ignored,
    as the parent left it, so a terminal's Ctrl-C reaches the children once, forwarded)."""
    if spawned is None:
        container = await checked_container(settings)
    else:
        container = make_container(settings)
        await known_dependencies(container, spawned.durability_problems)
    app = create_app(settings, container)
    config = hypercorn_config(settings)
    use_json_protocol_errors()  # Hypercorn's own error answers in the error shape too
    stop = stop_event(signal.SIGTERM) if spawned else stop_event(signal.SIGTERM, signal.SIGINT)
    place = f"{spawned.index}/{spawned.count}" if spawned else "1/1"
    logger.info(
        "serving on http://%s:%d (environment=%s, provider=%s, queue=%s, loop=%s, "
        "process=%s, pid=%d)",
        settings.host,
        settings.port,
        settings.environment.value,
        settings.default_provider.value,
        "redis" if settings.queue_persistence else "in-memory",
        event_loop.loop_name(asyncio.get_running_loop()),
        place,
        os.getpid(),
    )
    await worker_serve(
        wrap_app(app, config.wsgi_max_body_size, None),
        config,
        sockets=spawned.sockets if spawned else None,
        shutdown_trigger=stop.wait,
    )


def serve_process(spawned: SpawnedProcess) -> None:
    """The entry point of a spawned serve process: the settings read again from the same
    environment, logging set up as in the parent, then `serve`; the exit code tells the
    parent how it ended (0 stopped, 1 crashed, 2 refused its configuration)."""
    _end_with_the_parent()
    try:
        settings = load_settings()
    except ConfigurationError as exc:  # the parent accepted the same environment: unlikely
        print(f"llm_provider_service: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    configure_logging(settings, with_pid=True)
    try:
        event_loop.run(serve(settings, spawned))
    except ConfigurationError as exc:
        print(f"llm_provider_service: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception:  # a crash is a log line like any other, not a bare traceback
        logger.exception("serve process %d crashed", spawned.index)
        sys.exit(1)


def _end_with_the_parent() -> None:
    """On Linux, have the kernel send this process SIGTERM when its parent dies (even by
    SIGKILL, which the parent cannot forward), so no serve process outlives it and keeps
    accepting on the socket unsupervised. Elsewhere nothing: the parent's own forwarding is
    all there is."""
    if not sys.platform.startswith("linux"):
        return
    parent = multiprocessing.parent_process()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent is not None and os.getppid() != parent.pid:  # it died before the request
        os.kill(os.getpid(), signal.SIGTERM)
