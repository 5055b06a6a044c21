"""Command line: `python -m services.llm_provider_service serve|worker`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from prometheus_client import start_http_server

from services.llm_provider_service import event_loop
from services.llm_provider_service.background import BackgroundTasks
from services.llm_provider_service.logging_setup import configure_logging
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.redaction import Redactor, redact_logs
from services.llm_provider_service.serve_processes import ServeProcesses
from services.llm_provider_service.serving import (
    checked_container,
    serve,
    start_up_checks,
    stop_event,
)
from services.llm_provider_service.settings import ConfigurationError, Settings, load_settings

logger = logging.getLogger("llm_provider_service")


async def _work(settings: Settings) -> None:
    container = await checked_container(settings)
    server = None
    try:
        redact_logs(await container.get(Redactor))  # for the life of the process
        if settings.worker.metrics_port is not None:
            # A standalone worker serves no HTTP API, so its metrics get their own endpoint.
            metrics = await container.get(ServiceMetrics)
            server, _thread = start_http_server(
                settings.worker.metrics_port, addr=settings.host, registry=metrics.registry
            )
        logger.info(
            "standalone worker (environment=%s, loop=%s)",
            settings.environment.value,
            event_loop.loop_name(asyncio.get_running_loop()),
        )
        background = await BackgroundTasks.start(
            container,
            settings,
            with_worker=True,
            worker_stop=stop_event(signal.SIGTERM, signal.SIGINT),
        )
        try:
            await background.worker_finished()
        finally:
            await background.stop()  # the worker drained; then the relay and the rest stop
    finally:
        if server is not None:
            server.shutdown()
        await container.close()


def _serve(settings: Settings) -> int:
    """One process serves in itself; several are spawned after the start-up checks ran
    once here (a refusal is one line from one process, and Redis is asked once)."""
    if settings.serve_worker_count == 1:
        event_loop.run(serve(settings))
        return 0
    return ServeProcesses(settings, event_loop.run(start_up_checks(settings))).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llm_provider_service")
    parser.add_argument("command", choices=["serve", "worker"])
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "worker" and not settings.queue_persistence:
            raise ConfigurationError(
                "a standalone worker needs the shared Redis queue "
                "(LLM_PROVIDER_SERVICE_ENABLE_QUEUE_PERSISTENCE=true); the in-memory queue "
                "is drained by the worker inside `pdm run serve`"
            )
    except ConfigurationError as exc:
        print(f"llm_provider_service: configuration error: {exc}", file=sys.stderr)
        return 2
    # Every line of the process from here on, Hypercorn's and the libraries' included, in
    # LOG_FORMAT (JSON when deployed), redacted, aiokafka's reconnect noise dropped; with
    # several serve processes on one stream, each line names its process.
    several = args.command == "serve" and settings.serve_worker_count > 1
    configure_logging(settings, with_pid=several)
    try:
        if args.command == "serve":
            return _serve(settings)
        event_loop.run(_work(settings))
    except ConfigurationError as exc:  # refused by a start-up check, e.g. Redis durability
        print(f"llm_provider_service: configuration error: {exc}", file=sys.stderr)
        return 2
    except Exception:  # a crash is a log line like any other, not a bare traceback
        logger.exception("llm_provider_service crashed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
