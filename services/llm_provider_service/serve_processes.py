"""`serve` as several Hypercorn processes on one socket, after Hypercorn's own model
(`hypercorn/run.py`): the parent binds the socket once and spawns the processes, each of
which builds its own container and app; SIGTERM and SIGINT to the parent reach every process
as SIGTERM, and the parent waits for them to drain. The parent owns the directory where the
processes write their metrics (`metrics/processes.py`), so any of them answers `/metrics` for
all.

Unlike Hypercorn, it restarts none: a process that ends on its own stops the others and the
parent exits non-zero, so the orchestrator restarts the whole service and sees why, instead
of a service that is silently smaller or crash-looping inside one container.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

from hypercorn.config import Sockets

from services.llm_provider_service.metrics.processes import MetricFiles
from services.llm_provider_service.serving import SpawnedProcess, hypercorn_config, serve_process
from services.llm_provider_service.settings import Settings

logger = logging.getLogger("llm_provider_service")

# How often the parent looks at the clock while it waits for stopping processes.
_POLL_SECONDS = 1.0


class ServeProcesses:
    """The parent of `settings.serve_worker_count` serve processes."""

    def __init__(self, settings: Settings, durability_problems: list[str] | None) -> None:
        self._settings = settings
        self._problems = durability_problems
        self._children: list[BaseProcess] = []
        self._stopping = False
        self._metric_files: MetricFiles | None = None
        config = hypercorn_config(settings)
        # Hypercorn's graceful period, then the worker's drain and the container's close.
        self._stop_seconds = config.graceful_timeout + settings.worker.shutdown_grace_seconds + 10

    def run(self) -> int:
        """Serve until a signal or a process's end; the exit code: 0 when every process
        stopped cleanly after SIGTERM or SIGINT, else the first failure's (at least 1)."""
        sockets = hypercorn_config(self._settings).create_sockets()
        self._metric_files = MetricFiles()  # new and empty: no earlier run's counts
        # Ignored while spawning, so the children start with it ignored (a handler would be
        # reset to the default by exec); a terminal's Ctrl-C then stops them once, forwarded.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._stop)
        try:
            try:
                self._spawn(sockets)
            except BaseException:  # those already started must not outlive the parent
                self._stop()
                self._supervise()
                raise
            signal.signal(signal.SIGINT, self._stop)
            code = self._supervise()
            logger.info("serve: every process ended (exit code %d)", code)
            return code
        finally:
            for sock in (*sockets.insecure_sockets, *sockets.secure_sockets):
                sock.close()
            self._metric_files.remove()

    def _spawn(self, sockets: Sockets) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited loop
        count = self._settings.serve_worker_count
        assert self._metric_files is not None
        with self._metric_files.exported():
            for index in range(1, count + 1):
                if self._stopping:
                    break
                spawned = SpawnedProcess(index, count, sockets, self._problems)
                child = context.Process(
                    target=serve_process, args=(spawned,), name=f"serve-{index}", daemon=False
                )
                child.start()
                self._children.append(child)
        logger.info(
            "serve: %d processes on http://%s:%d, pids %s; metrics in %s",
            len(self._children),
            self._settings.host,
            self._settings.port,
            ", ".join(str(child.pid) for child in self._children),
            self._metric_files.path,
        )

    def _stop(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        """Forward SIGTERM to every process still running (a signal handler; also called
        when a process ended on its own)."""
        self._stopping = True
        for child in self._children:
            if child.exitcode is None and child.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)

    def _supervise(self) -> int:
        code = 0
        running = list(self._children)
        deadline: float | None = None
        while running:
            wait([child.sentinel for child in running], timeout=_POLL_SECONDS)
            for child in [c for c in running if c.exitcode is not None]:
                child.join()
                running.remove(child)
                self._mark_dead(child)
                code = code or self._ended(child, len(running))
            if self._stopping and deadline is None:
                deadline = time.monotonic() + self._stop_seconds
                logger.info(
                    "serve: stopping %d processes (up to %.0fs)", len(running), self._stop_seconds
                )
            if deadline is not None and running and time.monotonic() > deadline:
                for child in running:
                    logger.error(
                        "serve process %s (pid %s) did not stop within %.0fs; killed",
                        child.name,
                        child.pid,
                        self._stop_seconds,
                    )
                    child.kill()
                    child.join()
                    self._mark_dead(child)
                running.clear()
                code = code or 1
        return code

    def _mark_dead(self, child: BaseProcess) -> None:
        if self._metric_files is not None and child.pid is not None:
            self._metric_files.mark_dead(child.pid)

    def _ended(self, child: BaseProcess, others: int) -> int:
        """Log how `child` ended; its exit code as the parent's (0 for a requested stop)."""
        exitcode = child.exitcode
        if self._stopping:
            if exitcode == 0:
                return 0
            logger.error(
                "serve process %s (pid %s) stopped with code %s", child.name, child.pid, exitcode
            )
        else:
            logger.error(
                "serve process %s (pid %s) ended on its own with code %s; stopping the other %d "
                "(none is restarted: the orchestrator restarts the service)",
                child.name,
                child.pid,
                exitcode,
                others,
            )
            self._stop()
        return exitcode if exitcode is not None and exitcode > 0 else 1
