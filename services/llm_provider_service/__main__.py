"""Command line: `python -m services.llm_provider_service serve|worker`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from dishka import AsyncContainer
from hypercorn.asyncio import serve
from hypercorn.config import Config
from prometheus_client import start_http_server

from services.llm_provider_service.app import create_app
from services.llm_provider_service.background import BackgroundTasks
from services.llm_provider_service.di import check_dependencies, make_container
from services.llm_provider_service.logging_setup import configure_logging
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.redaction import Redactor, redact_logs
from services.llm_provider_service.server_errors import use_json_protocol_errors
from services.llm_provider_service.settings import ConfigurationError, Settings, load_settings

logger = logging.getLogger("llm_provider_service")


def _stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, so both stop the process gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _checked_container(settings: Settings) -> AsyncContainer:
    """The container, after the start-up checks passed (they may refuse to start)."""
    container = make_container(settings)
    try:
        await check_dependencies(container, settings)
    except BaseException:
        await container.close()
        raise
    return container


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


async def _serve(settings: Settings) -> None:
    app = create_app(settings, await _checked_container(settings))
    config = hypercorn_config(settings)
    use_json_protocol_errors()  # Hypercorn's own error answers in the error shape too
    stop = _stop_event()
    logger.info(
        "serving on http://%s:%d (environment=%s, provider=%s, queue=%s)",
        settings.host,
        settings.port,
        settings.environment.value,
        settings.default_provider.value,
        "redis" if settings.queue_persistence else "in-memory",
    )
    await serve(app, config, shutdown_trigger=stop.wait)


async def _work(settings: Settings) -> None:
    container = await _checked_container(settings)
    server = None
    try:
        redact_logs(await container.get(Redactor))  # for the life of the process
        if settings.worker.metrics_port is not None:
            # A standalone worker serves no HTTP API, so its metrics get their own endpoint.
            metrics = await container.get(ServiceMetrics)
            server, _thread = start_http_server(
                settings.worker.metrics_port, addr=settings.host, registry=metrics.registry
            )
        background = await BackgroundTasks.start(
            container, settings, with_worker=True, worker_stop=_stop_event()
        )
        try:
            await background.worker_finished()
        finally:
            await background.stop()  # the worker drained; then the relay and the rest stop
    finally:
        if server is not None:
            server.shutdown()
        await container.close()


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
    # LOG_FORMAT (JSON when deployed), redacted, aiokafka's reconnect noise dropped.
    configure_logging(settings)
    try:
        asyncio.run(_serve(settings) if args.command == "serve" else _work(settings))
    except ConfigurationError as exc:  # refused by a start-up check, e.g. Redis durability
        print(f"llm_provider_service: configuration error: {exc}", file=sys.stderr)
        return 2
    except Exception:  # a crash is a log line like any other, not a bare traceback
        logger.exception("llm_provider_service crashed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
